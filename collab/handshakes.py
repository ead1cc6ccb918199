"""Adaptations of autobahn's connection handling under daphne, applied when the application is imported.

autobahn builds the text of its debug log lines before calling the logger, even when debug
logging is off and the logger drops them: on every connection it pretty-prints its whole
option set (`pformat`) and colours names for several lines (`hltype`, `hlval`), and it colours
two more for every chunk received or sent. Here those three names, as autobahn's WebSocket
modules see them, build their text only when a log line is written, so the lines read exactly
as before when debug logging is on.
"""

import pprint


class TextWhenLogged:
    """The text `function(*args, **kwargs)`, built only when a log line formats it."""

    __slots__ = ("function", "args", "kwargs")

    def __init__(self, function, args, kwargs):
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def __str__(self):
        return self.function(*self.args, **self.kwargs)

    def __repr__(self):
        return repr(str(self))

    def __format__(self, spec):
        return format(str(self), spec)


def formatted_when_logged(function):
    """A stand-in for `function` whose text is built only when it is formatted."""

    def stand_in(*args, **kwargs):
        return TextWhenLogged(function, args, kwargs)

    stand_in.__name__ = function.__name__
    stand_in.__wrapped__ = function
    return stand_in


def timings_text(timings):
    """autobahn's Timings.__str__, the one use of pformat there outside a log line: it must stay a str."""
    return pprint.pformat(timings._timings)


def apply_lazy_debug_text():
    """Make autobahn build the text of its debug log lines only when they are written."""
    try:
        from autobahn import util
        from autobahn.twisted import websocket as twisted_websocket
        from autobahn.websocket import protocol
    except ImportError:  # not running under daphne
        return
    if getattr(protocol, "collab_lazy_debug_text_applied", False):
        return
    protocol.Timings.__str__ = timings_text
    stand_ins = {
        "pformat": formatted_when_logged(pprint.pformat),
        "hltype": formatted_when_logged(util.hltype),
        "hlval": formatted_when_logged(util.hlval),
    }
    # Every other use of these names in the two modules is an argument of a log call.
    for module in (protocol, twisted_websocket):
        for name, stand_in in stand_ins.items():
            if hasattr(module, name):
                setattr(module, name, stand_in)
    protocol.collab_lazy_debug_text_applied = True

"""Deadlines of one length for many connections, on one reactor timer instead of one each.

A crowd of viewers arriving at once is thousands of HTTP connections, each given
COLLAB_HTTP_HEADER_TIMEOUT to send its request line and headers. A Twisted timer per
connection costs a heap entry, its cancellation and, with the asyncio reactor, often a new
asyncio timer as well; and nearly every one of them is cancelled a millisecond later, when the
handshake arrives. Deadlines of the same length fall due in the order they were set, so they
are kept in that order, in a dict, and one timer waits for the oldest.
"""

_deadlines = {}  # seconds -> SharedDeadlines


def deadlines_of(seconds):
    """This process's deadlines of `seconds`, shared by every connection that waits that long."""
    shared = _deadlines.get(seconds)
    if shared is None:
        shared = _deadlines[seconds] = SharedDeadlines(seconds)
    return shared


class SharedDeadlines:
    """Calls due `seconds` after they are set, in the order they were set, on one reactor timer."""

    def __init__(self, seconds, reactor=None):
        self.seconds = seconds
        self._reactor = reactor
        self._due = {}  # key -> (when, call), oldest first
        self._timer = None

    def set(self, key, call):
        """Call `call()` `seconds` from now unless `key` is cancelled first; a key set again restarts."""
        reactor = self.reactor()
        self._due.pop(key, None)
        self._due[key] = (reactor.seconds() + self.seconds, call)
        if self._timer is None:
            self._timer = reactor.callLater(self.seconds, self._fire)

    def cancel(self, key):
        """Forget `key`'s call, if it is still due."""
        self._due.pop(key, None)

    def __contains__(self, key):
        return key in self._due

    def __len__(self):
        return len(self._due)

    def reactor(self):
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def _fire(self):
        self._timer = None
        reactor = self.reactor()
        try:
            now = reactor.seconds()
            while self._due:
                key, (when, call) = next(iter(self._due.items()))
                if when > now:
                    break
                del self._due[key]
                call()
        finally:
            # Also after a call that raised: the calls due later still get their timer.
            if self._due and self._timer is None:
                when = next(iter(self._due.values()))[0]
                self._timer = reactor.callLater(max(0.0, when - reactor.seconds()), self._fire)

"""The wire format of PROTOCOL.md: actions, error codes and close codes, every server message, client frames,
and the bodies of the Edit in Word and conversion endpoints (sections 10 and 11).

Nothing else in the house writes a server envelope (`"Origin": "server"`) or an error text:
the consumer, the hub, the socket delivery and the daphne adaptations all build their
frames here. Builders return JSON text, ready to be framed once and sent to many sockets.
"""

import datetime
import json

from conversion import PAYLOAD_TYPES

from . import bounded_json

# Client actions (matched case-insensitively) and server-only actions.
INIT = "init"
UPDATE = "update-ooxml"
GET_HTML = "get-html"
END_SESSION = "end-session"
PING = "ping"
PONG = "pong"
PRESENCE = "presence"
SESSION_CLOSED = "session-closed"
HTML_PATCH = "html-patch"  # a version 2 extension, and the action of its messages
REFUSAL_REASONS = "refusal-reasons"  # a version 2 extension: a "Reason" on some refusals (collab's own)
PUBLISH_RECEIPTS = "publish-receipts"  # a version 2 extension: a publisher hears what became of its updates
UNKNOWN = "Unknown"  # the Action of an error about a frame with no readable action

ROLES = ("word", "client")
DEFAULT_PAYLOAD_TYPE = "ooxml"
EXTENSIONS = frozenset({HTML_PATCH, REFUSAL_REASONS, PUBLISH_RECEIPTS})

# One wording for a session that has ended or never existed on collab's own surfaces (the REST
# API, the commands, the pages); the socket's error texts stay the contract's.
SESSION_ENDED = "This session has ended or does not exist"
# Why a viewer's (client) token cannot publish: the refusal-reasons Reason, the REST API's 403.
VIEWER_TOKEN_FOR_PUBLISHING = "this is a viewer token; publishing needs the session's Word token"  # noqa: S105

ERROR_TEXTS = {
    "E1001": "Session not found",
    "E1002": "Missing authentication token",
    "E1003": "Invalid token",
    "E1004": "Invalid action",
    "E1006": "Session expired or removed",
    "E1007": "Socket not authenticated",
    "E1008": "Action not allowed for this token",
    "E1009": "Message too large",
    "E1010": "Malformed message",
    "E1011": "Too many messages",
    "E1012": "Authentication timeout",
    "E2001": "Error processing message",
    "E2002": "Conversion error",
}

# Close codes: 1000 for a normal end, else 4000 plus the HTTP-like status (section 3).
NORMAL_CLOSURE = 1000
UNAUTHORISED = 4401
TOO_SLOW = 4408
GONE = 4410
TOO_LARGE = 4413
TOO_MANY_CONNECTIONS = 4429
SERVER_FAULT = 4500

# Errors after which the server closes the socket, with the close code that follows them.
CLOSING_ERRORS = {
    "E1001": UNAUTHORISED,
    "E1002": UNAUTHORISED,
    "E1003": UNAUTHORISED,
    "E1006": GONE,
    "E1007": UNAUTHORISED,
    "E1009": TOO_LARGE,
    "E1012": UNAUTHORISED,
}

# The reasons session-closed gives when the server closes for something other than an error.
SERVER_ERROR = "Server error, reconnect later"
DATABASE_UNAVAILABLE = "database unavailable"
DATABASE_ERROR = f"Server error: {DATABASE_UNAVAILABLE}, reconnect later"
TOO_SLOW_REASON = "Connection too slow: reconnect to get the current version"
TOO_MANY_FROM_ADDRESS = "Too many connections from this address"
TOO_MANY_WITH_TOKEN = "Too many connections with this token"  # noqa: S105 - words, not a secret
TOO_MANY_BEFORE_SIGN_IN = "Too much sent before signing in from this address, retry later"
EMPTY_DOCUMENT = "the document is empty"
# The text of the HTTP 408 to a request whose line and headers came too slowly (daphne_adaptations.py).
HEAD_TOO_SLOW = "Request line and headers not received in time"

# Session ids a refusal may echo back: as long as any id can be.
MAX_ECHOED_SESSION_ID = 64

# The most values and the deepest nesting one client frame may hold (a first message has ten
# or so, two deep): reading one costs little more memory than the frame itself.
MAX_FRAME_VALUES = 1000
MAX_FRAME_DEPTH = 32


class ProtocolError(Exception):
    """A client frame the protocol refuses: the error code, the action it concerned, a detail, a Reason.

    The detail follows the code's text in Content; the reason goes in a key of its own, for
    sockets granted refusal-reasons only (refusal_reason).
    """

    def __init__(self, code, action=UNKNOWN, detail=None, reason=None):
        super().__init__(code, action, detail)
        self.code = code
        self.action = action
        self.detail = detail
        self.reason = reason

    @property
    def closes(self):
        """Whether the socket is closed after this error."""
        return self.code in CLOSING_ERRORS


# Client frames


def parse_frame(text, max_bytes):
    """The JSON object of one client frame and its action in lower case; ProtocolError if malformed."""
    if text is None:
        raise ProtocolError("E1010", detail="binary frames are not accepted")
    if too_large(text, max_bytes):
        raise ProtocolError("E1009", detail=f"limit {max_bytes} bytes")
    try:
        message = bounded_json.loads(text, MAX_FRAME_VALUES, MAX_FRAME_DEPTH)
    except bounded_json.TooComplex as error:
        raise ProtocolError("E1010", detail=str(error)) from None
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise ProtocolError("E1010", detail="expected one JSON object")
    action = message.get("Action")
    if not isinstance(action, str) or not action:
        raise ProtocolError("E1010", detail="Action is missing")
    return message, action.lower()


def too_large(text, max_bytes):
    """Whether a frame exceeds `max_bytes` in UTF-8, without encoding small or ASCII frames."""
    if len(text) * 4 <= max_bytes:
        return False
    if text.isascii():
        return len(text) > max_bytes
    return len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes


def protocol_version(message):
    """The protocol version a first message asks for: 2 with `"Protocol": 2` or more, else 1."""
    requested = message.get("Protocol")
    return 2 if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 2 else 1


def requested_role(message):
    """The first message's Origin if it names a role, else None."""
    role = message.get("Origin")
    return role if role in ROLES else None


def granted_features(message, protocol):
    """The extensions of a first message's "Features" this server grants (version 2 only)."""
    requested = message.get("Features")
    if protocol < 2 or not isinstance(requested, list):
        return frozenset()
    # Only strings can name one: a list or an object in the list is no feature (and unhashable).
    return frozenset(feature for feature in requested if isinstance(feature, str) and feature in EXTENSIONS)


def refusal_reason(features, held_role, wanted_role):
    """The Reason for refusing a token of role `held_role` where `wanted_role` is needed, if asked for."""
    if REFUSAL_REASONS not in features:
        return None
    if held_role == "client" and wanted_role == "word":
        return VIEWER_TOKEN_FOR_PUBLISHING
    return None


def update_payload(message):
    """(content, payload type) of an update-ooxml message; ProtocolError when it cannot be converted."""
    content = message.get("Content")
    payload_type = message.get("PayloadType") or DEFAULT_PAYLOAD_TYPE
    if not isinstance(content, str) or not isinstance(payload_type, str):
        raise ProtocolError("E1010", UPDATE, "Content must be a string")
    payload_type = payload_type.lower()
    if payload_type not in PAYLOAD_TYPES:
        raise ProtocolError("E2002", UPDATE, "unsupported PayloadType")
    if is_empty_document(content):
        raise ProtocolError("E2002", UPDATE, EMPTY_DOCUMENT)
    return content, payload_type


def is_empty_document(content):
    """Whether an update's content (text or bytes) holds nothing but white space."""
    return not content.strip()


def database_unavailable_detail(action):
    """The E2001 detail when the database does not answer; an update says it was not saved."""
    if action == UPDATE:
        return f"{DATABASE_UNAVAILABLE}, update not saved"
    return DATABASE_UNAVAILABLE


# Server messages


def server_message(session_id, action, **fields):
    """A server message as JSON text: the envelope, then the fields in the order given."""
    return json.dumps({"Origin": "server", "SessionId": session_id, "Action": action, **fields})


def init_message(session_id, role, version, viewers, features, title=""):
    """The version 2 reply to a first message; the title lets a client say whose session it joined."""
    return server_message(
        session_id,
        INIT,
        Success=True,
        Role=role,
        Version=version,
        Viewers=viewers,
        Protocol=2,
        Features=sorted(features),
        Title=title,
    )


def published_at_text(moment):
    """A stored publish time as the protocol's PublishedAt: ISO 8601 in UTC, e.g. 2026-12-01T11:00:00Z."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def html_message(session_id, version, html, protocol, blocks=None, published_at=None):
    """get-html with a version's HTML; version 2 adds its number and PublishedAt, html-patch its blocks."""
    fields = {"PayloadType": "html", "Content": html, "Success": True}
    if protocol >= 2:
        fields["Version"] = version
        if published_at is not None:
            fields["PublishedAt"] = published_at
    if blocks is not None:
        fields["Blocks"] = blocks
    return server_message(session_id, GET_HTML, **fields)


def patch_message(session_id, version, ops, checksum, published_at=None):
    """html-patch turning version-1 into version; the checksum is of the new version's HTML."""
    fields = {"Version": version, "BaseVersion": version - 1, "Ops": ops, "Checksum": checksum}
    if published_at is not None:
        fields["PublishedAt"] = published_at
    return server_message(session_id, HTML_PATCH, **fields, Success=True)


def update_stored_message(session_id, version):
    """publish-receipts: the sender's update is stored as `version` (sent to the sender alone)."""
    return server_message(session_id, UPDATE, Success=True, Version=version)


def update_superseded_message(session_id):
    """publish-receipts: the sender's update was dropped for a newer one of the session, unconverted."""
    return server_message(session_id, UPDATE, Success=True, Superseded=True)


def presence_message(session_id, viewers, publishers):
    """The version 2 presence counts of a session."""
    return server_message(session_id, PRESENCE, Viewers=viewers, Publishers=publishers, Success=True)


def pong_message(session_id):
    """The answer to a version 2 ping."""
    return server_message(session_id, PONG, Success=True)


def end_session_message(session_id, reason):
    """The session ended, and why."""
    return server_message(session_id, END_SESSION, Content=reason, Success=True)


def session_closed_message(session_id, reason):
    """Sent before the server closes a socket itself."""
    return server_message(session_id, SESSION_CLOSED, Content=reason, Success=True)


def error_text(code, detail=None):
    """An error's English text, with its detail."""
    text = ERROR_TEXTS[code]
    return f"{text}: {detail}" if detail else text


def error_message(session_id, code, action, detail=None, reason=None):
    """An error about `action` (Unknown when the frame had none); refusal-reasons adds its Reason last."""
    fields = {"Content": error_text(code, detail), "Success": False, "ErrorCode": code}
    if reason:
        fields["Reason"] = reason
    return server_message(session_id, action, **fields)


def too_large_text(limit):
    """The REST API's and the HTTP layer's words for a body over its limit."""
    return f"{ERROR_TEXTS['E1009']} (limit {limit} bytes)."


def api_error_body(code, message):
    """The REST API's error answer: {"error": {"code", "message"}}."""
    return {"error": {"code": code, "message": message}}


def echoed_session_id(value):
    """The SessionId a refused first message gave, if it is fit to be sent back."""
    return value if isinstance(value, str) and len(value) <= MAX_ECHOED_SESSION_ID else None


def refusal_frames(session_id, code, action=UNKNOWN, detail=None):
    """The error and the session-closed that go before the close code of a closing error."""
    return [
        error_message(session_id, code, action, detail),
        session_closed_message(session_id, ERROR_TEXTS[code]),
    ]


# Edit in Word (section 10): the answers' codes and texts. H1008, H2001 and H2002 are collab's
# own additions to the codes of the system being replaced.
LAUNCH_LINK_MADE = "Word link generated successfully."
HTTP_ERROR_TEXTS = {
    "H1001": "Invalid request",
    "H1002": "Unauthorized access",
    "H1003": "Forbidden",
    "H1006": "Generating new session is not allowed",
    "H1007": "Failed to generate word link",
    "H1008": "Too many requests",
    "H2001": "Internal server error",
    "H2002": "Service unavailable",
}


def launch_link_body(session_id, word_url, **more):
    """The answer to a launch link request that made a session."""
    return {
        "success": True,
        "message": LAUNCH_LINK_MADE,
        "sessionId": session_id,
        "wordUrl": word_url,
        **more,
    }


def launch_link_error_body(code, detail=None):
    """A refused launch link request; the message is the code's text, with a detail."""
    text = HTTP_ERROR_TEXTS[code]
    message = f"{text}: {detail}" if detail else text
    return {"success": False, "errorCode": code, "message": message, "sessionId": None, "wordUrl": None}


# The conversion endpoints (section 11).
EMPTY_HTML = "HTML content cannot be empty."
EMPTY_DOCX = "DOCX file cannot be empty."


def conversion_refusal_body(message):
    """A refused conversion request: {"success": false, "message"}."""
    return {"success": False, "message": message}

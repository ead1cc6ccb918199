"""Which browser origins may open a WebSocket (PROTOCOL.md section 2)."""

from urllib.parse import urlsplit

from django.conf import settings


def normalise_origin(value):
    """scheme://host[:port] in lower case, default ports dropped; None if it is not an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port and port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def allowed_origins():
    """The server's own origin and those listed in COLLAB_ALLOWED_ORIGINS."""
    origins = {normalise_origin(settings.COLLAB_PUBLIC_URL)}
    origins.update(normalise_origin(item) for item in settings.COLLAB_ALLOWED_ORIGINS)
    origins.discard(None)
    return origins


def origin_allowed(origin, host=None):
    """Whether a handshake with this Origin header (bytes or None) may proceed."""
    if origin is None:
        # Scripts and the command line send no Origin; their first message still needs a token.
        return True
    if "*" in settings.COLLAB_ALLOWED_ORIGINS:
        return True
    candidate = normalise_origin(origin.decode("latin-1"))
    if candidate is None:
        return False
    if host is not None:
        # A page this very server served (same scheme-less host and port) is its own.
        own_host = host.decode("latin-1").lower()
        if candidate.split("://", 1)[1] == own_host:
            return True
    return candidate in allowed_origins()

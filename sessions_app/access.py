"""Who may do what: origins that may open a socket, token, key and session look-ups, how often a socket sends.

Origins follow PROTOCOL.md section 2. Each socket may send COLLAB_RATE_LIMIT_MESSAGES frames
per COLLAB_RATE_LIMIT_WINDOW seconds, in bursts of up to COLLAB_RATE_LIMIT_BURST (a token
bucket); a frame over the limit is answered with E1011 and dropped, and the socket stays open.
"""

import asyncio
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from .models import CollabSession, IntegrationKey, SessionToken, could_be_secret, digest_secret

# last_used_at is a hint for the admin, so it is written at most this often per token or key.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class AccessDenied(Exception):
    """A failed authentication: the protocol's error code; for a usable token of the wrong role, its role."""

    def __init__(self, code, token_role=None):
        super().__init__(code, token_role)
        self.code = code
        self.token_role = token_role


def access_session_by_token(session_id, secret, role):
    """The usable token of this active session for this role, or AccessDenied(E1001/E1002/E1003)."""
    # Session ids are ASCII; anything else (a lone surrogate included) cannot name one.
    if not isinstance(session_id, str) or not session_id or len(session_id) > 64 or not session_id.isascii():
        raise AccessDenied("E1001")
    token = SessionToken.objects.for_secret(secret)
    if token is None and role == SessionToken.Role.CLIENT:
        token = key_token_of(secret, session_id)
    # A token of this session brings the session's row along: one read instead of two.
    if token is not None and token.session_id == session_id:
        session = token.session
    else:
        session = CollabSession.objects.filter(pk=session_id).first()
    if session is None or not session.is_active:
        raise AccessDenied("E1001")
    if not secret:
        raise AccessDenied("E1002")
    if token is None or token.session_id != session.id or not token.is_usable():
        raise AccessDenied("E1003")
    if token.role != role:
        raise AccessDenied("E1003", token_role=token.role)
    note_used(token)
    return token


def key_token_of(secret, session_id):
    """The token that stands for an integration key in a session the key created, or None (section 10)."""
    key = usable_integration_key(secret)
    if key is None:
        return None
    return (
        SessionToken.objects.select_related("session")
        .filter(session_id=session_id, integration_key=key)
        .first()
    )


def usable_integration_key(secret):
    """The unrevoked integration key whose secret this is, or None; noted as used."""
    key = IntegrationKey.objects.for_secret(secret)
    if key is None or key.revoked:
        return None
    note_used(key)
    return key


def integration_key_secret(headers):
    """The integration key in a request's `Token` header, else `Authorization: Bearer`; None if neither."""
    secret = headers.get("Token")
    if secret is None:
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else None
    return secret.strip() if secret is not None else None


class QueuedCheck:
    """One access_session_by_token call waiting for the database thread, which later identical checks join."""

    def __init__(self, key):
        self.key = key
        self.task = None


# Checks not begun yet, by (session id, digest of the secret, role); the lock guards it across threads.
queued_checks = {}
queued_checks_lock = threading.Lock()


def shared_check_key(session_id, secret, role):
    """The key under which identical checks share a query, or None for one that must run on its own."""
    # A secret that could never be found is checked on its own.
    if not isinstance(session_id, str) or not could_be_secret(secret):
        return None
    return session_id, digest_secret(secret), role


def stop_queueing(check):
    """Let no further check join this one: it is about to read, or has ended."""
    with queued_checks_lock:
        if queued_checks.get(check.key) is check:
            del queued_checks[check.key]


def run_queued_check(check, session_id, secret, role):
    stop_queueing(check)
    return access_session_by_token(session_id, secret, role)


async def access_session_by_token_shared(session_id, secret, role):
    """access_session_by_token from async code; identical checks waiting together share one query.

    A crowd opening one viewer link would queue the same check once per socket on the one
    database thread. A check joins an identical one only while that one still waits for the
    thread, never once it has begun to read, so every answer comes from a read made after the
    check arrived: nothing is remembered past the query, and a token revoked before a check
    arrives is refused as it would be by a query of the check's own.
    """
    key = shared_check_key(session_id, secret, role)
    if key is None:
        return await database_sync_to_async(access_session_by_token)(session_id, secret, role)
    with queued_checks_lock:
        check = queued_checks.get(key)
        # Another event loop's query cannot be awaited here (an async_to_sync thread, a test's loop).
        if check is None or check.task.get_loop() is not asyncio.get_running_loop():
            check = queued_checks[key] = QueuedCheck(key)
            check.task = asyncio.ensure_future(
                database_sync_to_async(run_queued_check)(check, session_id, secret, role)
            )
            # Also when the thread never ran it (closing stale connections failed first).
            check.task.add_done_callback(lambda _task: stop_queueing(check))
    try:
        # A socket that goes away stops waiting without cancelling the others' query.
        return await asyncio.shield(check.task)
    except AccessDenied as denied:
        raise AccessDenied(denied.code, denied.token_role) from None


def note_used(row):
    """Record that a token or an integration key was used, without a database write on every use."""
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        type(row).objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now


def refusal_for_socket(token_id):
    """Why a socket authenticated earlier may no longer act (E1006, E1003), or None."""
    return token_standings([token_id])[token_id][0]


def token_standings(token_ids):
    """{token id: (why its sockets may no longer act (E1006, E1003) or None, its expiry)}, in one query.

    The expiry is a POSIX timestamp, or None for a token that never expires; a token that is
    gone, or whose session ended, is E1006.
    """
    now = timezone.now()
    standings = dict.fromkeys(token_ids, ("E1006", None))
    tokens = (
        SessionToken.objects.filter(pk__in=standings)
        .select_related("session")
        .only("revoked", "expires_at", "session__status")
    )
    for token in tokens:
        refusal = None
        if not token.session.is_active:
            refusal = "E1006"
        elif not token.is_usable(now):
            refusal = "E1003"
        standings[token.pk] = (refusal, token.expires_at.timestamp() if token.expires_at else None)
    return standings


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


def cors_allowed(origin):
    """Whether a page of this origin (text) may read the answers of the paths under CORS (CORS_URLS_REGEX)."""
    if settings.CORS_ALLOW_ALL_ORIGINS:
        return True
    candidate = normalise_origin(origin)
    return candidate is not None and candidate in {
        normalise_origin(item) for item in settings.CORS_ALLOWED_ORIGINS
    }


def origin_allowed(origin, host=None, scheme=None):
    """Whether a handshake with this Origin header (bytes or None) may proceed.

    host is the Host header (bytes or None), scheme the ASGI scope's ("ws", "wss" or None).
    """
    if origin is None:
        # Scripts and the command line send no Origin; their first message still needs a token.
        return True
    if "*" in settings.COLLAB_ALLOWED_ORIGINS:
        return True
    candidate = normalise_origin(origin.decode("latin-1"))
    if candidate is None:
        return False
    return candidate in allowed_origins() or candidate == origin_of_own_host(host, scheme)


def origin_of_own_host(host, scheme):
    """The origin of this server's pages under the Host it was reached by, or None if that is not its name.

    A page the server served under another of its names (`make run` reached through the machine's
    address listed in DJANGO_ALLOWED_HOSTS) connects back to that name. Only a name Django would
    serve pages for counts, and never through "*": a page on an attacker's name that resolves to
    this server (DNS rebinding) sends that name as both its Origin and the Host.
    """
    if host is None:
        return None
    host = host.decode("latin-1").lower()
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, [name for name in settings.ALLOWED_HOSTS if name != "*"]):
        return None
    # daphne's scopes carry no scheme: the public URL's is then the scheme of the server's pages.
    page_scheme = {"ws": "http", "wss": "https"}.get(scheme) or urlsplit(settings.COLLAB_PUBLIC_URL).scheme
    return normalise_origin(f"{page_scheme}://{host}")


class MessageRate:
    """A token bucket for one socket's frames."""

    def __init__(self, messages, window, burst, clock=time.monotonic):
        self.rate = messages / window if messages else 0
        self.capacity = max(burst, 1)
        self.tokens = float(self.capacity)
        self.clock = clock
        self.updated = clock()

    @classmethod
    def from_settings(cls):
        """The bucket the settings describe."""
        return cls(
            settings.COLLAB_RATE_LIMIT_MESSAGES,
            settings.COLLAB_RATE_LIMIT_WINDOW,
            settings.COLLAB_RATE_LIMIT_BURST,
        )

    def allow(self):
        """Whether one more frame may be handled now; takes a token if so."""
        if not self.rate:
            return True
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

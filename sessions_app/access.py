"""Who may do what: token and session look-ups for sockets and the API."""

from datetime import timedelta

from django.utils import timezone

from .models import CollabSession, SessionToken

# last_used_at is a hint for the admin, so it is written at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class AccessDenied(Exception):
    """A failed authentication, carrying the protocol's error code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def access_session_by_token(session_id, secret, role):
    """The usable token of this active session for this role, or AccessDenied(E1001/E1002/E1003)."""
    # Session ids are ASCII; anything else (a lone surrogate included) cannot name one.
    if not isinstance(session_id, str) or not session_id or len(session_id) > 64 or not session_id.isascii():
        raise AccessDenied("E1001")
    session = CollabSession.objects.filter(pk=session_id).first()
    if session is None or not session.is_active:
        raise AccessDenied("E1001")
    if not secret:
        raise AccessDenied("E1002")
    token = SessionToken.objects.for_secret(secret) if isinstance(secret, str) else None
    if token is None or token.session_id != session.id or token.role != role or not token.is_usable():
        raise AccessDenied("E1003")
    note_token_used(token)
    return token


def note_token_used(token):
    """Record that a token was used, without a database write on every use."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        SessionToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def refusal_for_socket(token_id):
    """Why a socket authenticated earlier may no longer act (E1006, E1003), or None."""
    token = SessionToken.objects.select_related("session").filter(pk=token_id).first()
    if token is None or not token.session.is_active:
        return "E1006"
    if not token.is_usable():
        return "E1003"
    return None

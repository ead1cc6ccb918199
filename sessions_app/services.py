"""Every state change of sessions, tokens and revisions, and the broadcast that follows it."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import CollabSession, Revision, SessionToken

log = logging.getLogger(__name__)

ENDED_MESSAGE = "Session ended successfully."


class SessionUnavailable(Exception):
    """The session is unknown or has ended, so it cannot change any more."""


def session_group(session_id):
    """The channel-layer group every socket of a session joins."""
    return f"collab.session.{session_id}"


def broadcast_on_commit(session_id, message):
    """Tell every socket of the session, once the current transaction is committed."""

    def send():
        try:
            async_to_sync(get_channel_layer().group_send)(session_group(session_id), message)
        except Exception:
            # The database holds the change; sockets catch up on their next get-html or reconnect.
            log.exception("broadcast of %s to session %s failed", message["type"], session_id)

    transaction.on_commit(send)


def do_create_session(title=""):
    """Create a session with one word token and one client token; returns it and both secrets."""
    with transaction.atomic():
        session = CollabSession.objects.create(title=title)
        word, word_secret = do_issue_token(session, SessionToken.Role.WORD, label="default")
        client, client_secret = do_issue_token(session, SessionToken.Role.CLIENT, label="default")
    return session, word_secret, client_secret


def do_issue_token(session, role, label="", expires_at=None, can_end_session=None):
    """Create a token for a session; the plain-text secret is returned here and never again."""
    fields = {"label": label, "expires_at": expires_at}
    if can_end_session is not None:
        fields["can_end_session"] = can_end_session
    token, secret = SessionToken.build(session, role, **fields)
    token.save()
    return token, secret


def do_publish_document(session_id, converted):
    """Store converted HTML as the session's next version, then tell its sockets; returns the version."""
    with transaction.atomic():
        session = CollabSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or not session.is_active:
            raise SessionUnavailable(session_id)
        now = timezone.now()
        session.version += 1
        session.html = converted.html
        session.updated_at = now
        session.save(update_fields=["version", "html", "updated_at"])
        Revision.objects.create(
            session=session,
            version=session.version,
            html=converted.html,
            input_bytes=converted.input_bytes,
            html_bytes=converted.html_bytes,
            conversion_ms=round(converted.seconds * 1000),
            warnings=list(converted.warnings)[:100],
            created_at=now,
        )
        prune_revisions(session)
        broadcast_on_commit(session.id, {"type": "session.html", "version": session.version})
    return session.version


def prune_revisions(session):
    """Keep at most COLLAB_MAX_REVISIONS revisions of a session (0 keeps all)."""
    keep = settings.COLLAB_MAX_REVISIONS
    if keep and session.version > keep:
        Revision.objects.filter(session=session, version__lte=session.version - keep).delete()


def do_end_session(session_id, reason=ENDED_MESSAGE):
    """End an active session and close its sockets; False if it was not active."""
    with transaction.atomic():
        session = CollabSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or not session.is_active:
            return False
        session.status = CollabSession.Status.ENDED
        session.ended_at = timezone.now()
        session.end_reason = reason
        session.save(update_fields=["status", "ended_at", "end_reason"])
        broadcast_on_commit(session.id, {"type": "session.ended", "reason": reason})
    return True


def do_revoke_token(token):
    """Revoke a token; sockets using it are refused at once."""
    with transaction.atomic():
        SessionToken.objects.filter(pk=token.pk).update(revoked=True)
        token.revoked = True
        broadcast_on_commit(token.session_id, {"type": "token.revoked", "token_id": token.pk})


def current_document(session_id):
    """(version, html) of a session as stored, or None if it does not exist."""
    row = CollabSession.objects.filter(pk=session_id).values_list("version", "html").first()
    return tuple(row) if row else None

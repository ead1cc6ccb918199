"""Every state change of sessions, tokens, revisions, integration keys, launch files, and what follows it."""

import logging
from datetime import timedelta
from functools import reduce
from operator import or_

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .access import AccessDenied, refusal_for_socket
from .models import CollabSession, IntegrationKey, LaunchFile, Revision, SessionToken
from .protocol import published_at_text
from .version_notices import version_notices

log = logging.getLogger(__name__)

ENDED_MESSAGE = "Session ended successfully."


class SessionUnavailable(Exception):
    """The session is unknown or has ended, so it cannot change any more."""


class SessionCapReached(Exception):
    """The integration key already holds its maximum of active sessions."""


class KeyRevoked(Exception):
    """The integration key was revoked while its request was under way."""


def session_group(session_id):
    """The channel-layer group every socket of a session joins."""
    return f"collab.session.{session_id}"


async def broadcast(session_id, message):
    """Tell every socket of the session (from the event loop); a failure is logged, not raised."""
    try:
        await get_channel_layer().group_send(session_group(session_id), message)
    except Exception:
        # The database holds the change; sockets catch up on their next get-html or reconnect.
        log.exception("broadcast of %s to session %s failed", message["type"], session_id)


def broadcast_on_commit(session_id, message):
    """broadcast, once the current transaction is committed."""
    transaction.on_commit(lambda: async_to_sync(broadcast)(session_id, message))


def do_create_session(title=""):
    """Create a session with one word token and one client token; returns it and both secrets."""
    with transaction.atomic():
        session = CollabSession.objects.create(title=title)
        # Shown as a publish code: by the admin, the API and create_session.
        word, word_secret = do_issue_token(
            session, SessionToken.Role.WORD, label="default", expires_at=publish_code_expiry()
        )
        client, client_secret = do_issue_token(
            session, SessionToken.Role.CLIENT, label="default", expires_at=default_token_expiry("client")
        )
    return session, word_secret, client_secret


def do_reopen_session(title):
    """The newest usable active session with this title, else a new one; returns it and fresh secrets.

    Tokens are stored hashed, so the earlier ones cannot be shown again: new ones are issued.
    """
    with transaction.atomic():
        session = (
            CollabSession.objects.filter(status=CollabSession.Status.ACTIVE, title=title)
            .exclude(pk__in=expired_sessions(timezone.now()).values("pk"))
            .select_for_update()
            .first()
        )
        if session is None:
            return do_create_session(title)
        _, word_secret = do_issue_token(
            session, SessionToken.Role.WORD, label="default", expires_at=publish_code_expiry()
        )
        _, client_secret = do_issue_token(
            session, SessionToken.Role.CLIENT, label="default", expires_at=default_token_expiry("client")
        )
    return session, word_secret, client_secret


def default_token_expiry(role, now=None):
    """When a new token of this role expires (COLLAB_WORD/CLIENT_TOKEN_DAYS), or None for never."""
    if role == SessionToken.Role.WORD:
        days = settings.COLLAB_WORD_TOKEN_DAYS
    else:
        days = settings.COLLAB_CLIENT_TOKEN_DAYS
    return (now or timezone.now()) + timedelta(days=days) if days else None


def publish_code_expiry(now=None):
    """When a word token shown as a publish code expires: COLLAB_PUBLISH_CODE_HOURS, if sooner than others.

    A publish code is a bearer secret pasted once into the task pane: a copy of it found later
    (in a message, in a document's properties) publishes until the token expires.
    """
    now = now or timezone.now()
    expiry = default_token_expiry(SessionToken.Role.WORD, now)
    if settings.COLLAB_PUBLISH_CODE_HOURS:
        sooner = now + timedelta(hours=settings.COLLAB_PUBLISH_CODE_HOURS)
        expiry = sooner if expiry is None else min(expiry, sooner)
    return expiry


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
        version, stored_at = store_document(session_id, converted)
        prune_revisions(session_id, version)
        notice = (version, converted.html, published_at_text(stored_at))
        transaction.on_commit(lambda: async_to_sync(version_notices.announce)(session_id, *notice))
    return version


def store_document(session_id, converted, publisher=None):
    """Store converted HTML as the session's next version, telling nobody: (version, updated_at).

    `publisher` is the id of the token whose socket sent the update, checked in the same
    statement that takes the version: AccessDenied (E1003) if it may no longer publish. The
    update queue calls this, holds the HTML in its process's document cache, serves its own
    sockets, then tells other processes (version_notices.py) and prunes the revisions
    (prune_revisions).
    """
    now = timezone.now()
    revision = {
        "input_bytes": converted.input_bytes,
        "html_bytes": converted.html_bytes,
        "conversion_ms": round(converted.seconds * 1000),
        "warnings": list(converted.warnings)[:100],
        "created_at": now,
    }
    if connection.vendor == "postgresql":
        # One statement, committed by itself: one round trip to the server instead of four.
        version = store_in_one_statement(session_id, converted.html, now, publisher, revision)
    else:
        with transaction.atomic():
            version = take_next_version(session_id, converted.html, now, publisher)
            if version is not None:
                insert_revision(session_id, version, converted.html, revision)
    if version is None:
        refusal = refusal_for_socket(publisher) if publisher is not None else None
        if refusal == "E1003":
            raise AccessDenied(refusal)
        raise SessionUnavailable(session_id)
    return version, now


def next_version_statement(publisher):
    """UPDATE taking an active session's next version (and, with `publisher`, checking that token).

    Its parameters: html, updated_at, session id, the active status and, with `publisher`,
    the token's id, the session id, False and the time. Only the models' table names are
    written into it; every value is a parameter.
    """
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(CollabSession._meta.db_table)}"  # noqa: S608
        " SET version = version + 1, html = %s, updated_at = %s WHERE id = %s AND status = %s"
    )
    if publisher is not None:
        sql += (
            f" AND EXISTS (SELECT 1 FROM {quote(SessionToken._meta.db_table)} WHERE id = %s"  # noqa: S608
            " AND session_id = %s AND revoked = %s AND (expires_at IS NULL OR expires_at > %s))"
        )
    return sql


def next_version_parameters(session_id, html, now, publisher):
    stamp = connection.ops.adapt_datetimefield_value(now)
    parameters = [html, stamp, session_id, CollabSession.Status.ACTIVE]
    if publisher is not None:
        parameters += [publisher, session_id, False, stamp]
    return parameters


def take_next_version(session_id, html, now, publisher=None):
    """Make `html` an active session's next version in one statement; the version, or None.

    None when the session is unknown or not active, or when `publisher` (a token id) is not an
    unrevoked, unexpired token of it. The row stays locked until the transaction ends. The
    HTML it replaces is never read.
    """
    return returned_version(
        next_version_statement(publisher) + " RETURNING version",
        next_version_parameters(session_id, html, now, publisher),
    )


def store_in_one_statement(session_id, html, now, publisher, revision):
    """take_next_version and the revision's INSERT in one PostgreSQL statement; the version, or None."""
    columns, values = revision_columns(revision)
    sql = (
        f"WITH bumped AS ({next_version_statement(publisher)} RETURNING id, version, html)"  # noqa: S608
        f" INSERT INTO {connection.ops.quote_name(Revision._meta.db_table)}"
        f" (session_id, version, html, {columns})"
        f" SELECT id, version, html, {', '.join(['%s'] * len(values))} FROM bumped RETURNING version"
    )
    return returned_version(sql, next_version_parameters(session_id, html, now, publisher) + values)


def insert_revision(session_id, version, html, revision):
    """INSERT a version's revision row: the ORM's save costs as much again as the statement."""
    columns, values = revision_columns(revision)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(Revision._meta.db_table)}"  # noqa: S608
        f" (session_id, version, html, {columns}) VALUES (%s, %s, %s, {', '.join(['%s'] * len(values))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [session_id, version, html, *values])


def revision_columns(revision):
    """The quoted columns of a revision's fields (the `revision` dict's keys), and their values as stored."""
    fields = {field.name: field for field in Revision._meta.concrete_fields}
    columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in revision)
    values = [fields[name].get_db_prep_save(value, connection) for name, value in revision.items()]
    return columns, values


def returned_version(sql, parameters):
    """The version a statement ending in RETURNING version gave, or None if it changed no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
    return row[0] if row is not None else None


def prune_revisions(session_id, newest):
    """Keep at most COLLAB_MAX_REVISIONS revisions of a session, and COLLAB_MAX_REVISION_BYTES of their HTML.

    `newest` is the version just stored. The newest revision stored is always kept (it may
    be newer than `newest`, stored meanwhile by another process); 0 turns either bound off.
    What an earlier call left (its process ended before it pruned) goes as well.
    """
    revisions = Revision.objects.filter(session_id=session_id)
    keep = settings.COLLAB_MAX_REVISIONS
    if keep and newest > keep:
        revisions.filter(version__lte=newest - keep).delete()
    budget = settings.COLLAB_MAX_REVISION_BYTES
    # The sum comes from the revision_sizes index alone; the walk only when it is over.
    if not budget or (revisions.aggregate(total=Sum("html_bytes"))["total"] or 0) <= budget:
        return
    sizes = revisions.order_by("-version").values_list("version", "html_bytes")
    total = 0
    for index, (version, size) in enumerate(sizes):
        total += size
        if total > budget and index:  # the first, the newest stored, stays
            revisions.filter(version__lte=version).delete()
            return


def do_end_session(session_id, reason=ENDED_MESSAGE):
    """End an active session and close its sockets; False if it was not active."""
    with transaction.atomic():
        session = CollabSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None or not session.is_active:
            return False
        end_locked_session(session, reason)
    return True


def end_locked_session(session, reason, now=None):
    """Mark a session locked by the caller's transaction ended; its sockets hear why on commit."""
    session.status = CollabSession.Status.ENDED
    session.ended_at = now or timezone.now()
    session.end_reason = reason
    session.save(update_fields=["status", "ended_at", "end_reason"])
    # Its launch link ends with it; the file holds a word token in plain text.
    LaunchFile.objects.filter(session=session).delete()
    broadcast_on_commit(session.id, {"type": "session.ended", "reason": reason})


def do_expire_sessions(now=None):
    """End idle and over-age sessions, delete ended ones kept long enough and expired launch files.

    Returns (sessions ended, sessions deleted).

    Several processes may run this at once: each session is rechecked under a row lock, so it
    ends (and its sockets hear of it) exactly once.
    """
    now = now or timezone.now()
    ended = 0
    for session_id in list(expired_sessions(now).values_list("pk", flat=True)):
        with transaction.atomic():
            session = expired_sessions(now).select_for_update().filter(pk=session_id).first()
            if session is not None:
                end_locked_session(session, expiry_reason(session, now), now)
                ended += 1
    LaunchFile.objects.filter(expires_at__lte=now).delete()
    return ended, delete_ended_sessions(now)


def expired_sessions(now):
    """Active sessions idle past COLLAB_SESSION_IDLE_TIMEOUT or older than COLLAB_SESSION_MAX_AGE."""
    idle, max_age = settings.COLLAB_SESSION_IDLE_TIMEOUT, settings.COLLAB_SESSION_MAX_AGE
    conditions = []
    if idle:
        conditions.append(Q(last_activity__lte=now - timedelta(seconds=idle)))
    if max_age:
        conditions.append(Q(created_at__lte=now - timedelta(seconds=max_age)))
    if not conditions:
        return CollabSession.objects.none()
    return (
        CollabSession.objects.filter(status=CollabSession.Status.ACTIVE)
        .alias(last_activity=Coalesce("updated_at", "created_at"))
        .filter(reduce(or_, conditions))
    )


def expiry_reason(session, now):
    """Why an expired session ends, in words its viewers are shown."""
    max_age = settings.COLLAB_SESSION_MAX_AGE
    if max_age and session.created_at <= now - timedelta(seconds=max_age):
        return f"Session ended: it reached its maximum age of {describe_seconds(max_age)}."
    idle = settings.COLLAB_SESSION_IDLE_TIMEOUT
    return f"Session ended: no update for {describe_seconds(idle)}."


def describe_seconds(seconds):
    """A whole number of seconds in the largest unit that divides it: "2 hours", "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def delete_ended_sessions(now, batch=200):
    """Delete sessions ended more than COLLAB_KEEP_ENDED days ago, with their tokens and revisions."""
    keep = settings.COLLAB_KEEP_ENDED
    if not keep:
        return 0
    cutoff = now - timedelta(days=keep)
    old = CollabSession.objects.filter(status=CollabSession.Status.ENDED, ended_at__lte=cutoff)
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            _, per_model = old.filter(pk__in=ids).delete()
        deleted += per_model.get(CollabSession._meta.label, 0)
    return deleted


def do_revoke_token(token):
    """Revoke a token; sockets using it are refused at once."""
    with transaction.atomic():
        SessionToken.objects.filter(pk=token.pk).update(revoked=True)
        token.revoked = True
        broadcast_on_commit(token.session_id, {"type": "token.revoked", "token_id": token.pk})


def do_create_integration_key(name, max_sessions=0):
    """Create an integration key; the plain-text secret is returned here and never again."""
    key, secret = IntegrationKey.build(name, max_sessions)
    key.save()
    return key, secret


def do_revoke_integration_key(key):
    """Revoke a key; the sockets signed in with it are refused at once. False if it was revoked already."""
    with transaction.atomic():
        now = timezone.now()
        if not IntegrationKey.objects.filter(pk=key.pk, revoked=False).update(revoked=True, revoked_at=now):
            return False
        key.revoked, key.revoked_at = True, now
        tokens = list(
            SessionToken.objects.filter(integration_key=key, revoked=False).values_list("pk", "session_id")
        )
        SessionToken.objects.filter(pk__in=[pk for pk, _ in tokens]).update(revoked=True)
        for token_id, session_id in tokens:
            broadcast_on_commit(session_id, {"type": "token.revoked", "token_id": token_id})
    return True


def active_sessions_of(key):
    """The active sessions an integration key created."""
    return CollabSession.objects.filter(integration_key=key, status=CollabSession.Status.ACTIVE)


def has_session_room(key):
    """Whether the key may create one more session now (its cap is checked again when it does)."""
    return not key.max_sessions or active_sessions_of(key).count() < key.max_sessions


def do_start_edit_in_word(key, session, word_token, converted, launch_file):
    """Store a session an integration key asked for: its tokens, its first version and its launch file.

    `session`, `word_token` and `launch_file` come built but unsaved (the .docx holds the session's
    id and the word token's secret). SessionCapReached if the key holds its maximum of active
    sessions; the key's row is locked meanwhile, so concurrent requests cannot pass the cap together.
    """
    with transaction.atomic():
        locked = IntegrationKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked:
            raise KeyRevoked(key.pk)
        if not has_session_room(locked):
            raise SessionCapReached(key.pk)
        session.integration_key = locked
        session.save(force_insert=True)
        word_token.save(force_insert=True)
        SessionToken.build_for_key(session, locked, label=key_token_label(locked)).save()
        launch_file.save(force_insert=True)
        do_publish_document(session.id, converted)
    return session


def key_token_label(key):
    """The label of the token that stands for an integration key in its session, as the admin shows it."""
    return f"Edit in Word: key {key.name}"[:100]

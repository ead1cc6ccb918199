"""Sessions, their access tokens, the revisions they published; integration keys and Word launch files."""

import hashlib
import hmac
import secrets

from django.db import models
from django.utils import timezone

TOKEN_PREFIX_LENGTH = 8


def random_urlsafe(nbytes):
    """A URL-safe random string that never starts with "-", so command lines never take it for an option."""
    while (value := secrets.token_urlsafe(nbytes)).startswith("-"):
        pass
    return value


def new_session_id():
    """A URL-safe random session id."""
    return random_urlsafe(12)


def new_launch_file_id():
    """A launch file's id: 256 random bits, so its URL cannot be guessed."""
    return random_urlsafe(32)


def could_be_secret(value):
    """Whether a value could be a secret: ASCII text (a lone surrogate cannot be hashed), not too long."""
    return isinstance(value, str) and 0 < len(value) <= 200 and value.isascii()


def digest_secret(secret):
    """The stored form of a token: tokens are random, so a plain SHA-256 is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


class SecretQuerySet(models.QuerySet):
    """Look-ups of rows that store a secret's digest."""

    related = ()  # what a look-up brings along

    def for_secret(self, secret):
        """The row whose secret this is, or None; compared in constant time."""
        if not could_be_secret(secret):
            return None
        digest = digest_secret(secret)
        row = self.select_related(*self.related).filter(digest=digest).first()
        if row is None or not hmac.compare_digest(row.digest, digest):
            return None
        return row


class IntegrationKey(models.Model):
    """A host application's credential for Edit in Word (PROTOCOL.md section 10); stored as a hash."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    max_sessions = models.PositiveIntegerField(
        default=0, help_text="The most active sessions the key may hold at once; 0: no cap."
    )
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = SecretQuerySet.as_manager()

    class Meta:
        verbose_name = "integration key"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def build(cls, name, max_sessions=0):
        """A new unsaved key and its plain-text secret, which is never stored."""
        secret = random_urlsafe(32)
        key = cls(
            name=name,
            max_sessions=max_sessions,
            prefix=secret[:TOKEN_PREFIX_LENGTH],
            digest=digest_secret(secret),
        )
        return key, secret


class CollabSession(models.Model):
    """One shared document: the Word side publishes into it, viewers read it."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        ENDED = "ended"

    id = models.CharField(primary_key=True, max_length=32, default=new_session_id, editable=False)
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    html = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True, help_text="Time of the last published version.")
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)
    integration_key = models.ForeignKey(
        IntegrationKey,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
        help_text="The key whose Edit in Word request created the session.",
    )

    class Meta:
        verbose_name = "session"
        ordering = ["-created_at"]
        indexes = [
            # The admin and API list sessions by status, newest first.
            models.Index(fields=["status", "-created_at"], name="session_status_created"),
        ]

    def __str__(self):
        return f"{self.title or 'Untitled'} ({self.id})"

    @property
    def is_active(self):
        return self.status == self.Status.ACTIVE


class TokenQuerySet(SecretQuerySet):
    related = ("session",)


class SessionToken(models.Model):
    """An access token of a session; only its hash and a short prefix are stored."""

    # What the admin and the API show of a token, in this order: never the digest.
    SHOWN_FIELDS = (
        "role",
        "label",
        "prefix",
        "can_end_session",
        "created_at",
        "expires_at",
        "revoked",
        "last_used_at",
    )

    class Role(models.TextChoices):
        WORD = "word"
        CLIENT = "client"

    session = models.ForeignKey(CollabSession, on_delete=models.CASCADE, related_name="tokens")
    role = models.CharField(max_length=10, choices=Role.choices)
    can_end_session = models.BooleanField(default=False)
    label = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set on the one token of a session that stands for the integration key which created it:
    # that key signs in with its own secret, so the token's digest matches no secret at all.
    integration_key = models.ForeignKey(
        IntegrationKey, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens"
    )

    objects = TokenQuerySet.as_manager()

    class Meta:
        verbose_name = "token"
        ordering = ["created_at"]

    def __str__(self):
        return f"{self.role} token {self.prefix}… of {self.session_id}"

    @classmethod
    def build(cls, session, role, **fields):
        """A new unsaved token and its plain-text secret, which is never stored."""
        secret = random_urlsafe(32)
        fields.setdefault("can_end_session", role == cls.Role.WORD)
        token = cls(
            session=session,
            role=role,
            prefix=secret[:TOKEN_PREFIX_LENGTH],
            digest=digest_secret(secret),
            **fields,
        )
        return token, secret

    @classmethod
    def build_for_key(cls, session, key, **fields):
        """A new unsaved client token of a session for the integration key that created it; it may end it."""
        # Nobody holds a secret of this digest: the key's own secret is checked instead.
        return cls(
            session=session,
            role=cls.Role.CLIENT,
            can_end_session=True,
            prefix=key.prefix,
            digest=digest_secret(random_urlsafe(32)),
            integration_key=key,
            **fields,
        )

    def is_usable(self, now=None):
        """Unrevoked and unexpired."""
        now = now or timezone.now()
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


class Revision(models.Model):
    """A version a session published, kept so nothing published is lost."""

    session = models.ForeignKey(CollabSession, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    html = models.TextField()
    input_bytes = models.PositiveIntegerField(default=0)
    html_bytes = models.PositiveIntegerField(default=0)
    conversion_ms = models.PositiveIntegerField(default=0)
    warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["session", "version"], name="revision_unique_version"),
        ]
        indexes = [
            # Every update sums its session's revision sizes (services.prune_revisions): from this
            # index alone, without reading each row past its HTML (in SQLite, its overflow pages).
            models.Index(fields=["session", "version", "html_bytes"], name="revision_sizes"),
        ]

    def __str__(self):
        return f"{self.session_id} v{self.version}"


class LaunchFile(models.Model):
    """The .docx Word opens from an Edit in Word launch link, kept where every server process can serve it."""

    id = models.CharField(primary_key=True, max_length=64, default=new_launch_file_id, editable=False)
    session = models.ForeignKey(CollabSession, on_delete=models.CASCADE, related_name="launch_files")
    file_name = models.CharField(max_length=200)
    content = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The sweep deletes the files whose link has expired.
            models.Index(fields=["expires_at"], name="launch_file_expires"),
        ]

    def __str__(self):
        return f"{self.file_name} of {self.session_id}"

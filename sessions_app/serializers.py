"""What the REST API reads and writes (PROTOCOL.md section 6)."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import CollabSession, IntegrationKey, Revision, SessionToken
from .presence import presence
from .services import default_token_expiry

# The longest explicit token lifetime: ten years, in seconds.
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600


class SessionCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, allow_blank=True, default="")


class SessionCreatedSerializer(serializers.Serializer):
    """A new session with both tokens in plain text: the only time they are shown."""

    id = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=CollabSession.Status.choices)
    version = serializers.IntegerField()
    word_token = serializers.CharField(help_text="Publishes into the session; shown once.")
    client_token = serializers.CharField(help_text="Views the session; shown once.")
    viewer_url = serializers.CharField(help_text="The viewer link, with the client token in its fragment.")
    ws_url = serializers.CharField(help_text="The WebSocket endpoint.")


class TokenSerializer(serializers.ModelSerializer):
    """A token as stored: never its secret, only the first characters to tell it apart."""

    class Meta:
        model = SessionToken
        fields = ["id", *SessionToken.SHOWN_FIELDS]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer):
    """A session with its live connection counts, counted across every server process."""

    viewers = serializers.SerializerMethodField(help_text="Browser sockets connected now.")
    publishers = serializers.SerializerMethodField(help_text="Word sockets connected now.")

    class Meta:
        model = CollabSession
        fields = [
            "id",
            "title",
            "status",
            "version",
            "viewers",
            "publishers",
            "created_at",
            "updated_at",
            "ended_at",
            "end_reason",
            "integration_key",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "integration_key": {"help_text": "The integration key that created it (Edit in Word)."}
        }

    @extend_schema_field(serializers.IntegerField(min_value=0))
    def get_viewers(self, session):
        return self.live_counts(session)[0]

    @extend_schema_field(serializers.IntegerField(min_value=0))
    def get_publishers(self, session):
        return self.live_counts(session)[1]

    def live_counts(self, session):
        # One look-up per session, shared by the two fields (and by a list's rows).
        known = self.context.setdefault("live_counts", {})
        if session.pk not in known:
            known[session.pk] = presence.counts_sync(session.pk)
        return known[session.pk]


class SessionDetailSerializer(SessionSerializer):
    tokens = TokenSerializer(many=True, read_only=True)

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "tokens"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=SessionToken.Role.choices)
    label = serializers.CharField(max_length=100, allow_blank=True, default="")
    expires_in = serializers.IntegerField(
        min_value=0,
        max_value=MAX_EXPIRES_IN,
        required=False,
        allow_null=True,
        help_text="Lifetime in seconds; 0 never expires; absent or null: the role's default lifetime.",
    )

    def validate(self, data):
        """Turn expires_in into expires_at."""
        expires_in = data.pop("expires_in", None)
        if expires_in is None:
            data["expires_at"] = default_token_expiry(data["role"])
        else:
            data["expires_at"] = timezone.now() + timedelta(seconds=expires_in) if expires_in else None
        return data


class TokenCreatedSerializer(serializers.Serializer):
    """A new token with its secret in plain text: the only time it is shown."""

    id = serializers.IntegerField()
    token = serializers.CharField(help_text="The secret; shown once.")
    role = serializers.ChoiceField(choices=SessionToken.Role.choices)
    expires_at = serializers.DateTimeField(allow_null=True)


class IntegrationKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    max_sessions = serializers.IntegerField(
        min_value=0, max_value=1_000_000, default=0, help_text="The most active sessions at once; 0: no cap."
    )


class IntegrationKeyCreatedSerializer(serializers.Serializer):
    """A new integration key with its secret in plain text: the only time it is shown."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    key = serializers.CharField(help_text="The secret (the plugin's editinword_token); shown once.")
    max_sessions = serializers.IntegerField()


class IntegrationKeySerializer(serializers.ModelSerializer):
    """An integration key as stored: never its secret, only the first characters to tell it apart."""

    active_sessions = serializers.SerializerMethodField(help_text="Active sessions the key created.")

    class Meta:
        model = IntegrationKey
        fields = [
            "id",
            "name",
            "prefix",
            "max_sessions",
            "active_sessions",
            "revoked",
            "revoked_at",
            "created_at",
            "last_used_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(min_value=0))
    def get_active_sessions(self, key):
        return key.active_sessions  # annotated by the view's query


class RevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Revision
        fields = ["version", "created_at", "input_bytes", "html_bytes", "conversion_ms", "warnings", "html"]
        read_only_fields = fields

    warnings = serializers.ListField(child=serializers.CharField(), read_only=True)


class PublishedSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The session's version after this document.")


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A PROTOCOL.md error code such as E1003 or E2002.")
    message = serializers.CharField(help_text="English text, safe to show.")


class ErrorSerializer(serializers.Serializer):
    """Every error of the API: {"error": {"code", "message"}}."""

    error = ErrorDetailSerializer()

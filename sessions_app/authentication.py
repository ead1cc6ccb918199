"""REST API credentials of session tokens: `Authorization: Bearer <token>`, and their rate limit."""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.throttling import SimpleRateThrottle

from .access import note_token_used
from .models import SessionToken
from .protocol import ERROR_TEXTS

INVALID_TOKEN = f"{ERROR_TEXTS['E1003']}."


class SessionTokenAuthentication(BaseAuthentication):
    """A session's own token; `request.auth` is the SessionToken, `request.user` stays anonymous."""

    keyword = b"bearer"

    def authenticate(self, request):
        """The (user, token) of a usable bearer token, None without one, AuthenticationFailed otherwise."""
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected 'Bearer <token>'.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        token = SessionToken.objects.for_secret(secret)
        if token is None or not token.is_usable():
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        note_token_used(token)
        return AnonymousUser(), token

    def authenticate_header(self, request):
        return 'Bearer realm="collab"'


def session_token_of(request):
    """The SessionToken a request authenticated with, or None (staff, anonymous)."""
    return request.auth if isinstance(request.auth, SessionToken) else None


class SessionTokenRateThrottle(SimpleRateThrottle):
    """COLLAB_API_TOKEN_RATE requests per token; staff requests are not throttled."""

    scope = "session_token"

    def get_rate(self):
        # Read per request (throttles are built per request), not once at import like DRF's rates.
        return settings.COLLAB_API_TOKEN_RATE

    def get_cache_key(self, request, view):
        token = session_token_of(request)
        if token is None:
            return None
        # The digest, not the id: ids repeat across test databases sharing one Redis.
        return self.cache_format % {"scope": self.scope, "ident": token.digest}


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """Describes SessionTokenAuthentication in the OpenAPI schema."""

    target_class = SessionTokenAuthentication
    name = "sessionToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token of the session in the path (word or client), as issued once.",
        }

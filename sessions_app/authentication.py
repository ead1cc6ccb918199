"""REST API credentials: session tokens (Bearer), integration keys and their rates; staff's Basic."""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, BasicAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from .access import integration_key_secret, normalise_origin, note_used, usable_integration_key
from .login_limits import LoginAttempts, request_address
from .models import IntegrationKey, SessionToken
from .protocol import ERROR_TEXTS

INVALID_TOKEN = f"{ERROR_TEXTS['E1003']}."
INVALID_KEY = "Invalid integration key."
# The one challenge a 401 carries. Never Basic: a browser would ask for a password, keep it, and
# send it with any other site's form that posts here.
CHALLENGE = 'Bearer realm="collab"'
CROSS_SITE_REFUSAL = (
    "Cross-site request refused: HTTP Basic credentials are for scripts; "
    "a page of another site cannot use them to change anything."
)


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
        note_used(token)
        return AnonymousUser(), token

    def authenticate_header(self, request):
        return CHALLENGE


class IntegrationKeyAuthentication(BaseAuthentication):
    """A host application's integration key, in `Token: <key>` or `Authorization: Bearer <key>`.

    `request.auth` is the IntegrationKey, `request.user` stays anonymous. Staff's Basic and
    login sessions pass through to the classes after this one.
    """

    def authenticate(self, request):
        """The (user, key) of an unrevoked key, None without one, AuthenticationFailed otherwise."""
        secret = integration_key_secret(request.headers)
        if secret is None:
            return None
        key = usable_integration_key(secret)
        if key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        return AnonymousUser(), key

    def authenticate_header(self, request):
        return CHALLENGE


def integration_key_of(request):
    """The IntegrationKey a request authenticated with, or None."""
    return request.auth if isinstance(request.auth, IntegrationKey) else None


class IntegrationKeyRateThrottle(SimpleRateThrottle):
    """COLLAB_INTEGRATION_KEY_RATE requests per integration key; staff requests are not throttled."""

    scope = "integration_key"

    def get_rate(self):
        return settings.COLLAB_INTEGRATION_KEY_RATE

    def get_cache_key(self, request, view):
        key = integration_key_of(request)
        if key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": key.digest}


class StaffBasicAuthentication(BasicAuthentication):
    """HTTP Basic for staff scripts: refused to other sites' pages, throttled per user name and address."""

    def authenticate_credentials(self, userid, password, request=None):
        """(user, None) for right credentials; refused unchecked if cross-site or after too many failures."""
        if request.method not in SAFE_METHODS and is_cross_site(request):
            raise exceptions.PermissionDenied(CROSS_SITE_REFUSAL)
        attempts = LoginAttempts(userid, request_address(request))
        refusal = attempts.refusal()
        if refusal is not None:
            raise SignInsThrottled(refusal)
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            attempts.note_failure()
            raise

    def authenticate_header(self, request):
        return CHALLENGE


class SignInsThrottled(exceptions.Throttled):
    """429 with the refusal in words and its wait as Retry-After (DRF's own text would repeat it)."""

    def __init__(self, refusal):
        super().__init__(detail=refusal.describe())
        self.wait = refusal.wait


def is_cross_site(request):
    """Whether a browser sent this request from a page of another origin than ours or a trusted one.

    The Origin header decides when there is one; Sec-Fetch-Site otherwise. Scripts send neither.
    """
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None:
        # Compared as the socket check compares them: lower case, default ports dropped.
        candidate = normalise_origin(origin)
        own = normalise_origin(f"{request.scheme}://{request.get_host()}")
        trusted = {normalise_origin(item) for item in settings.CSRF_TRUSTED_ORIGINS}
        return candidate is None or (candidate != own and candidate not in trusted)
    return request.META.get("HTTP_SEC_FETCH_SITE", "none") not in ("same-origin", "none")


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


class StaffBasicScheme(OpenApiAuthenticationExtension):
    """Describes StaffBasicAuthentication in the OpenAPI schema."""

    target_class = StaffBasicAuthentication
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A staff user's name and password, sent with every request (the 401 asks for "
            "Bearer, so only clients that send Basic unasked, as curl -u does, use it).",
        }


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


class IntegrationKeyScheme(OpenApiAuthenticationExtension):
    """Describes IntegrationKeyAuthentication in the OpenAPI schema."""

    target_class = IntegrationKeyAuthentication
    name = "integrationKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Token",
            "description": "An integration key, as shown once when made; `Authorization: Bearer <key>` too.",
        }

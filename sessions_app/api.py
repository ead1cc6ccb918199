"""The REST API (PROTOCOL.md section 6, docs/API.md): thin views over services.py."""

import logging

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_permission_codename
from django.core.exceptions import RequestDataTooBig
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.utils.http import quote_etag
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView, exception_handler

from conversion import ConversionError

from . import links
from .authentication import session_token_of
from .models import CollabSession, IntegrationKey, Revision, SessionToken
from .protocol import (
    EMPTY_DOCUMENT,
    ERROR_TEXTS,
    SESSION_ENDED,
    VIEWER_TOKEN_FOR_PUBLISHING,
    api_error_body,
    error_text,
    is_empty_document,
    too_large_text,
)
from .publishing import update_queue
from .serializers import (
    ErrorSerializer,
    IntegrationKeyCreatedSerializer,
    IntegrationKeyCreateSerializer,
    IntegrationKeySerializer,
    PublishedSerializer,
    RevisionSerializer,
    SessionCreatedSerializer,
    SessionCreateSerializer,
    SessionDetailSerializer,
    SessionSerializer,
    TokenCreatedSerializer,
    TokenCreateSerializer,
)
from .services import (
    SessionUnavailable,
    do_create_integration_key,
    do_create_session,
    do_end_session,
    do_issue_token,
    do_revoke_integration_key,
    do_revoke_token,
)

log = logging.getLogger(__name__)

SESSION_NOT_FOUND = f"{SESSION_ENDED}."

# The PROTOCOL.md error code of each HTTP status the API answers with.
ERROR_CODES = {
    400: "E1010",
    401: "E1003",
    403: "E1008",
    404: "E1001",
    405: "E1004",
    406: "E1010",
    410: "E1006",
    413: "E1009",
    415: "E1010",
    422: "E2002",
    429: "E1011",
    500: "E2001",
}

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class DocumentRejected(exceptions.APIException):
    status_code = 422
    default_detail = f"{ERROR_TEXTS['E2002']}."


class SessionGone(exceptions.APIException):
    status_code = 410
    default_detail = f"{SESSION_ENDED}."


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = f"{ERROR_TEXTS['E1009']}."


def api_exception_handler(exc, context):
    """Every API error as {"error": {"code", "message"}} with its HTTP status."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    response = exception_handler(exc, context)
    if response is None:
        log.error("API request failed", exc_info=exc)
        return Response(api_error_body("E2001", f"{ERROR_TEXTS['E2001']}."), status=500)
    if isinstance(exc, exceptions.NotAuthenticated):
        code = "E1002"
    else:
        code = ERROR_CODES.get(response.status_code, "E2001")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data.get("detail", "")
    response.data = api_error_body(code, describe_detail(detail))
    return response


def describe_detail(detail, field=None):
    """DRF's error detail (a text, or lists and dicts of them per field) as one line."""
    if isinstance(detail, dict):
        return " ".join(
            describe_detail(value, join_field(field, name)) for name, value in detail.items() if value
        )
    if isinstance(detail, list):
        return " ".join(describe_detail(value, field) for value in detail)
    return f"{field}: {detail}" if field else str(detail)


def join_field(parent, name):
    if name == api_settings.NON_FIELD_ERRORS_KEY:
        return parent
    return f"{parent}.{name}" if parent else str(name)


@csrf_exempt
def api_not_found(request, path=""):
    """Any other path under /api/: the API's 404, not Django's HTML page."""
    return JsonResponse(api_error_body("E1001", "Not found."), status=404)


def error_responses(*statuses):
    """The schema of the error answers an endpoint may give."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in statuses}


ERROR_DESCRIPTIONS = {
    400: "Invalid request body or query (E1010).",
    401: "No credentials (E1002) or wrong ones (E1003).",
    403: "Authenticated, but not allowed to do this (E1008): a missing model permission, or Basic "
    "credentials on a change sent from another site's page.",
    404: "No such session, or one the caller may not see (E1001).",
    410: "The session has ended (E1006).",
    413: "The document is larger than COLLAB_MAX_MESSAGE_BYTES (E1009).",
    415: "Not a .docx or Flat OPC content type (E1010).",
    422: "The document cannot be converted (E2002).",
    429: "Too many requests with this token, or too many failed sign-ins (E1011); see Retry-After.",
}
STAFF_ERRORS = (400, 401, 403, 404, 429)
TOKEN_ERRORS = (401, 403, 404, 429)
STAFF_AUTH = [{"basicAuth": []}, {"cookieAuth": []}]
# Session ids are URL-safe base64; the URL pattern refuses anything else before the database sees it.
SESSION_ID_PATTERN = "[A-Za-z0-9_-]{1,64}"
SESSION_ID = OpenApiParameter(
    "session_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The session's id.",
    pattern=f"^{SESSION_ID_PATTERN}$",
)


class Pagination(PageNumberPagination):
    """Numbered pages of COLLAB_API_PAGE_SIZE items; `page_size` asks for up to 200."""

    page_size_query_param = "page_size"
    max_page_size = 200

    @property
    def page_size(self):
        return settings.COLLAB_API_PAGE_SIZE


class RevisionPagination(Pagination):
    """Revisions carry their HTML, so their pages are shorter."""

    @property
    def page_size(self):
        return min(settings.COLLAB_API_PAGE_SIZE, 20)


def has_admin_permission(user, action, model):
    """Whether the admin lets this user `action` ("view", "add", "change") objects of `model`.

    As in the admin, the permission to change an object includes viewing it; superusers have all.
    """
    opts = model._meta
    actions = (action, "change") if action == "view" else (action,)
    return any(user.has_perm(f"{opts.app_label}.{get_permission_codename(each, opts)}") for each in actions)


def missing_permission_refusal(action, model):
    opts = model._meta
    codename = f"{opts.app_label}.{get_permission_codename(action, opts)}"
    return f"Your account lacks the permission to {action} {opts.verbose_name_plural} ({codename})."


class StaffOrSessionToken(BasePermission):
    """Staff holding the view's model permissions; a session token only on views of one session."""

    def has_permission(self, request, view):
        if request.user and request.user.is_staff:
            if not view.staff_allowed:
                raise exceptions.PermissionDenied(view.staff_refusal)
            self.check_staff_permissions(request, view)
            return True
        return session_token_of(request) is not None and "session_id" in view.kwargs

    def check_staff_permissions(self, request, view):
        """PermissionDenied, in words, unless the user holds what the admin asks for the same action."""
        method = "GET" if request.method == "HEAD" else request.method
        if method == "OPTIONS" or not hasattr(view, method.lower()):
            return  # DRF answers with the view's description, or 405
        needed = view.staff_permissions.get(method)
        if needed is None:
            raise exceptions.PermissionDenied("Action not allowed for staff.")
        for action, model in needed:
            if not has_admin_permission(request.user, action, model):
                raise exceptions.PermissionDenied(missing_permission_refusal(action, model))


class StaffViews:
    """What staff may do on a view: its model permissions per method (docs/API.md), as the admin asks them."""

    permission_classes = [StaffOrSessionToken]
    staff_allowed = True
    staff_refusal = ""
    staff_permissions = {}  # method: [(action, model), …], every one needed


class SessionScoped(StaffViews):
    """A view of the session in the URL; a token of another session finds nothing there (404)."""

    token_roles = ()  # roles whose tokens may use the view, within their own session
    token_refusal = f"{ERROR_TEXTS['E1008']}."  # the 403 to a token of another role

    def get_session(self, sessions=CollabSession.objects):
        """The session in the URL if the caller may see it, else NotFound; PermissionDenied if not act."""
        session_id = self.kwargs["session_id"]
        token = session_token_of(self.request)
        if token is not None and token.session_id != session_id:
            raise exceptions.NotFound(SESSION_NOT_FOUND)
        session = sessions.filter(pk=session_id).first()
        if session is None:
            raise exceptions.NotFound(SESSION_NOT_FOUND)
        if token is not None and not self.token_allowed(token):
            raise exceptions.PermissionDenied(self.token_refusal)
        return session

    def token_allowed(self, token):
        return token.role in self.token_roles


@extend_schema(exclude=True)
class ApiRootView(APIView):
    """Where things are."""

    permission_classes = [AllowAny]

    def get(self, request):
        return Response(
            {
                "sessions": request.build_absolute_uri(reverse("api:sessions")),
                "integration_keys": request.build_absolute_uri(reverse("api:integration-keys")),
                "schema": request.build_absolute_uri(reverse("api:schema")),
                "docs": request.build_absolute_uri(reverse("api:docs")),
            }
        )


class SessionListView(StaffViews, generics.ListCreateAPIView):
    """Staff: list sessions, newest first, or create one."""

    staff_permissions = {"GET": [("view", CollabSession)], "POST": [("add", CollabSession)]}
    serializer_class = SessionSerializer
    pagination_class = Pagination

    def get_queryset(self):
        sessions = CollabSession.objects.order_by("-created_at", "pk")
        state = self.request.query_params.get("status")
        if state is not None:
            if state not in CollabSession.Status.values:
                raise exceptions.ValidationError({"status": f"must be one of {CollabSession.Status.values}"})
            sessions = sessions.filter(status=state)
        key = self.request.query_params.get("integration_key")
        if key is not None:
            if not key.isascii() or not key.isdigit() or len(key) > 18:
                raise exceptions.ValidationError({"integration_key": "must be an integration key's id"})
            sessions = sessions.filter(integration_key_id=int(key))
        return sessions

    @extend_schema(
        summary="List sessions",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=CollabSession.Status.values, required=False),
            OpenApiParameter(
                "integration_key",
                OpenApiTypes.INT,
                required=False,
                description="Only the sessions this integration key created.",
            ),
        ],
        responses={200: SessionSerializer(many=True), **error_responses(*STAFF_ERRORS)},
        auth=STAFF_AUTH,
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create a session",
        request=SessionCreateSerializer,
        responses={201: SessionCreatedSerializer, **error_responses(400, 401, 403, 429)},
        auth=STAFF_AUTH,
    )
    def post(self, request):
        form = SessionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        session, word_secret, client_secret = do_create_session(form.validated_data["title"])
        details = links.connection_details(session, word_secret, client_secret)
        created = SessionCreatedSerializer({**details, "status": session.status, "version": session.version})
        return Response(created.data, status=status.HTTP_201_CREATED)


class SessionDetailView(SessionScoped, APIView):
    """Staff: one session with its live counts and its tokens (never their secrets)."""

    staff_permissions = {"GET": [("view", CollabSession), ("view", SessionToken)]}

    @extend_schema(
        summary="Read a session",
        parameters=[SESSION_ID],
        responses={200: SessionDetailSerializer, **error_responses(*TOKEN_ERRORS)},
        auth=STAFF_AUTH,
    )
    def get(self, request, session_id):
        session = self.get_session(CollabSession.objects.prefetch_related("tokens"))
        return Response(SessionDetailSerializer(session).data)


class TokenListView(SessionScoped, APIView):
    """Staff: issue a token."""

    # The admin issues tokens from the session's page, to those who may change the session.
    staff_permissions = {"POST": [("change", CollabSession)]}

    @extend_schema(
        summary="Issue a token",
        parameters=[SESSION_ID],
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer, **error_responses(400, *TOKEN_ERRORS)},
        auth=STAFF_AUTH,
    )
    def post(self, request, session_id):
        session = self.get_session()
        form = TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        role, label = form.validated_data["role"], form.validated_data["label"]
        token, secret = do_issue_token(
            session, role, label=label, expires_at=form.validated_data["expires_at"]
        )
        issued = TokenCreatedSerializer(
            {"id": token.pk, "token": secret, "role": role, "expires_at": token.expires_at}
        )
        return Response(issued.data, status=status.HTTP_201_CREATED)


class TokenDetailView(SessionScoped, APIView):
    """Staff: revoke a token; sockets using it are refused at once."""

    staff_permissions = {"DELETE": [("change", SessionToken)]}

    @extend_schema(
        summary="Revoke a token",
        parameters=[SESSION_ID],
        responses={204: None, **error_responses(*TOKEN_ERRORS)},
        auth=STAFF_AUTH,
    )
    def delete(self, request, session_id, token_id):
        session = self.get_session()
        token = SessionToken.objects.filter(session=session, pk=token_id).first()
        if token is None:
            raise exceptions.NotFound("Token not found.")
        do_revoke_token(token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionEndView(SessionScoped, APIView):
    """Staff or a token allowed to end the session (word tokens by default): end it for everyone."""

    staff_permissions = {"POST": [("change", CollabSession)]}

    def token_allowed(self, token):
        return token.can_end_session

    @extend_schema(
        summary="End a session",
        description="Live sockets get end-session, then session-closed, and are closed. Ending an "
        "ended session changes nothing.",
        parameters=[SESSION_ID],
        request=None,
        responses={200: SessionSerializer, **error_responses(*TOKEN_ERRORS)},
    )
    def post(self, request, session_id):
        session = self.get_session()
        do_end_session(session.id)
        session.refresh_from_db()
        return Response(SessionSerializer(session).data)


class SessionHtmlView(SessionScoped, APIView):
    """Staff or any token of the session: the current HTML, with the version as its ETag."""

    staff_permissions = {"GET": [("view", CollabSession)]}
    token_roles = (SessionToken.Role.WORD, SessionToken.Role.CLIENT)
    # The stored HTML is sanitised already; this keeps it inert should that ever fail.
    CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"

    @extend_schema(
        summary="Read the current HTML",
        parameters=[
            SESSION_ID,
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="An ETag from an earlier answer: 304 if the version is still the same.",
            ),
        ],
        responses={
            (200, "text/html"): OpenApiResponse(
                OpenApiTypes.STR, description="The HTML; ETag is the version."
            ),
            304: OpenApiResponse(description="Not modified."),
            **error_responses(*TOKEN_ERRORS),
        },
    )
    def get(self, request, session_id):
        session = self.get_session(CollabSession.objects.only("id", "version", "html"))
        etag = quote_etag(str(session.version))
        response = HttpResponse(session.html, content_type="text/html; charset=utf-8")
        response["ETag"] = etag
        response["Cache-Control"] = "no-cache"
        response["Content-Security-Policy"] = self.CONTENT_SECURITY_POLICY
        return get_conditional_response(request, etag=etag, response=response)


class RawDocumentParser(BaseParser):
    """The request body as bytes, refused past COLLAB_MAX_MESSAGE_BYTES."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.COLLAB_MAX_MESSAGE_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(too_large_text(limit))
        return body


class DocxParser(RawDocumentParser):
    media_type = DOCX_MEDIA_TYPE


class FlatOpcParser(RawDocumentParser):
    media_type = "application/xml"


class FlatOpcTextParser(RawDocumentParser):
    media_type = "text/xml"


# The conversion payload type of each accepted content type.
MEDIA_PAYLOAD_TYPES = {
    DocxParser.media_type: "docx",
    FlatOpcParser.media_type: "ooxml",
    FlatOpcTextParser.media_type: "ooxml",
}


class SessionDocumentView(SessionScoped, APIView):
    """The session's word token: publish a document, as update-ooxml does over the WebSocket."""

    parser_classes = [DocxParser, FlatOpcParser, FlatOpcTextParser]
    staff_allowed = False
    staff_refusal = "Publishing needs the session's word token."
    token_roles = (SessionToken.Role.WORD,)
    token_refusal = f"{error_text('E1008', VIEWER_TOKEN_FOR_PUBLISHING)}."

    @extend_schema(
        summary="Publish a document",
        description="Converts the document, stores it as the next version and broadcasts it to "
        "every socket of the session, like update-ooxml.",
        parameters=[SESSION_ID],
        request={
            DOCX_MEDIA_TYPE: OpenApiTypes.BINARY,
            "application/xml": OpenApiTypes.STR,
        },
        responses={200: PublishedSerializer, **error_responses(*TOKEN_ERRORS, 410, 413, 415, 422)},
        auth=[{"sessionToken": []}],
    )
    def put(self, request, session_id):
        session = self.get_session()
        payload_type = MEDIA_PAYLOAD_TYPES.get(request.content_type.split(";")[0].strip().lower())
        if payload_type is None:
            sent = request.content_type.split(";")[0].strip() or "none"
            raise exceptions.UnsupportedMediaType(
                sent, detail=f"{sent} is not a Word document's type: send {', '.join(MEDIA_PAYLOAD_TYPES)}"
            )
        body = request.data if isinstance(request.data, bytes) else b""
        if is_empty_document(body):
            raise DocumentRejected(f"{error_text('E2002', EMPTY_DOCUMENT)}.")
        try:
            content = body if payload_type == "docx" else body.decode("utf-8")
            version = async_to_sync(update_queue.convert_and_store)(session.id, content, payload_type)
        except UnicodeDecodeError:
            raise DocumentRejected(f"{error_text('E2002', 'the document is not UTF-8 text')}.") from None
        except ConversionError as error:
            raise DocumentRejected(error_text("E2002", error.reason)) from None
        except SessionUnavailable:
            raise SessionGone() from None
        if version is None:
            # A newer update replaced this one before it was converted; report what is stored.
            session.refresh_from_db(fields=["version"])
            version = session.version
        return Response(PublishedSerializer({"version": version}).data)


class RevisionListView(SessionScoped, generics.ListAPIView):
    """Staff: the stored versions of a session, newest first."""

    staff_permissions = {"GET": [("view", Revision)]}

    serializer_class = RevisionSerializer
    pagination_class = RevisionPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Revision.objects.none()
        return Revision.objects.filter(session=self.get_session()).order_by("-version")

    @extend_schema(
        summary="List revisions",
        parameters=[SESSION_ID],
        responses={200: RevisionSerializer(many=True), **error_responses(*TOKEN_ERRORS)},
        auth=STAFF_AUTH,
    )
    def get(self, request, session_id):
        return self.list(request)


class IntegrationKeyListView(StaffViews, generics.ListCreateAPIView):
    """Staff: list integration keys (never their secrets), or create one (PROTOCOL.md section 10)."""

    staff_permissions = {"GET": [("view", IntegrationKey)], "POST": [("add", IntegrationKey)]}
    serializer_class = IntegrationKeySerializer
    pagination_class = Pagination

    def get_queryset(self):
        active = Count("sessions", filter=Q(sessions__status=CollabSession.Status.ACTIVE))
        return IntegrationKey.objects.annotate(active_sessions=active).order_by("-created_at", "pk")

    @extend_schema(
        summary="List integration keys",
        responses={200: IntegrationKeySerializer(many=True), **error_responses(*STAFF_ERRORS)},
        auth=STAFF_AUTH,
    )
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create an integration key",
        description="The key appears in plain text in this answer and nowhere else, ever.",
        request=IntegrationKeyCreateSerializer,
        responses={201: IntegrationKeyCreatedSerializer, **error_responses(400, 401, 403, 429)},
        auth=STAFF_AUTH,
    )
    def post(self, request):
        form = IntegrationKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        key, secret = do_create_integration_key(
            form.validated_data["name"], form.validated_data["max_sessions"]
        )
        created = IntegrationKeyCreatedSerializer(
            {"id": key.pk, "name": key.name, "key": secret, "max_sessions": key.max_sessions}
        )
        return Response(created.data, status=status.HTTP_201_CREATED)


class IntegrationKeyDetailView(StaffViews, APIView):
    """Staff: revoke an integration key; sockets signed in with it are refused at once."""

    staff_permissions = {"DELETE": [("change", IntegrationKey)]}

    @extend_schema(
        summary="Revoke an integration key",
        description="Live sockets signed in with the key get E1003 and are closed; its sessions go on. "
        "Revoking a revoked key changes nothing.",
        responses={204: None, **error_responses(401, 403, 404, 429)},
        auth=STAFF_AUTH,
    )
    def delete(self, request, key_id):
        # Past the largest id the database holds, no key can be meant (and a query would overflow).
        key = IntegrationKey.objects.filter(pk=key_id).first() if key_id < 2**63 else None
        if key is None:
            raise exceptions.NotFound("Integration key not found.")
        do_revoke_integration_key(key)
        return Response(status=status.HTTP_204_NO_CONTENT)

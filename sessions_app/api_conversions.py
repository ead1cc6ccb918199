"""The conversion endpoints of the system being replaced (PROTOCOL.md section 11), for keys and staff.

Their answers keep that system's shapes: the .docx itself, `{"html", "document_language"}`, and
`{"success": false, "message"}` for a refused request; a document that cannot be converted is
answered with section 6's error shape (422, E2002).
"""

import logging
import math

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DatabaseError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from conversion import ConversionError
from conversion.archive import check_docx_archive
from conversion.document_language import document_language

from .api import DOCX_MEDIA_TYPE, DocumentRejected, PayloadTooLarge, describe_detail, error_responses
from .authentication import (
    IntegrationKeyAuthentication,
    IntegrationKeyRateThrottle,
    StaffBasicAuthentication,
    integration_key_of,
)
from .edit_in_word import BoundedJSONParser, docx_of, posted_html
from .protocol import (
    EMPTY_DOCX,
    EMPTY_HTML,
    ERROR_TEXTS,
    api_error_body,
    conversion_refusal_body,
    error_text,
    too_large_text,
)
from .publishing import conversion_limits, conversion_pool

log = logging.getLogger(__name__)

NO_CREDENTIALS = "An integration key (the Token header) or a staff login is needed."
DOCX_FILE_NAME = "Document.docx"


class Refusal(serializers.Serializer):
    """A refused conversion request, as the system being replaced answered it."""

    success = serializers.BooleanField()
    message = serializers.CharField()


REFUSALS = {
    400: "No HTML, or no file (or an empty one).",
    401: "No integration key and no staff login, or an unknown or revoked key.",
    403: "Basic credentials sent from another site's page.",
    413: "The body is larger than COLLAB_MAX_MESSAGE_BYTES.",
    415: "Not the expected content type.",
    429: "Too many requests with this integration key; see Retry-After.",
}


def refusal_responses(*statuses):
    return {code: OpenApiResponse(Refusal, description=REFUSALS[code]) for code in statuses}


class BoundedMultiPartParser(MultiPartParser):
    """A multipart form whose declared length is at most COLLAB_MAX_MESSAGE_BYTES."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.COLLAB_MAX_MESSAGE_BYTES
        declared = parser_context["request"].META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > limit:
            raise PayloadTooLarge(too_large_text(limit))
        return super().parse(stream, media_type, parser_context)


class IntegrationKeyOrStaff(BasePermission):
    def has_permission(self, request, view):
        return integration_key_of(request) is not None or bool(request.user and request.user.is_staff)


class ConversionView(APIView):
    """What both endpoints share: who may convert, how often, and the shape of a refusal."""

    authentication_classes = [IntegrationKeyAuthentication, StaffBasicAuthentication, SessionAuthentication]
    permission_classes = [IntegrationKeyOrStaff]
    throttle_classes = [IntegrationKeyRateThrottle]

    def get_exception_handler(self):
        return conversion_exception_handler

    def owner(self):
        """Whose conversion it is, for the pool to share its workers fairly."""
        key = integration_key_of(self.request)
        return f"integration-key:{key.pk}" if key is not None else f"staff:{self.request.user.pk}"


class HtmlToDocxView(ConversionView):
    """POST /api/convert/html-docx: a .docx made of HTML."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        summary="Convert HTML to a .docx",
        request=inline_serializer("HtmlToConvert", {"html": serializers.CharField()}),
        responses={
            (200, DOCX_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="The .docx."),
            **refusal_responses(400, 401, 403, 413, 415, 429),
            **error_responses(422),
        },
    )
    def post(self, request):
        html = posted_html(request.data, ("html", "Html"))
        if html is None:
            raise exceptions.ValidationError(EMPTY_HTML)
        try:
            docx = docx_of(html, {}, None, self.owner())
        except ConversionError as error:
            raise DocumentRejected(error_text("E2002", error.reason)) from None
        response = HttpResponse(docx, content_type=DOCX_MEDIA_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{DOCX_FILE_NAME}"'
        return response


class DocxToHtmlView(ConversionView):
    """POST /api/convert/docx-html: the HTML of a .docx and its default language."""

    parser_classes = [BoundedMultiPartParser]

    @extend_schema(
        summary="Convert a .docx to HTML",
        request={
            "multipart/form-data": inline_serializer("DocxToConvert", {"file": serializers.FileField()}),
        },
        responses={
            200: inline_serializer(
                "ConvertedDocx",
                {
                    "html": serializers.CharField(help_text="The body's HTML, sanitised."),
                    "document_language": serializers.CharField(
                        help_text="The document's default language, such as fa-IR, or empty."
                    ),
                },
            ),
            **refusal_responses(400, 401, 403, 413, 415, 429),
            **error_responses(422),
        },
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None or not upload.size:
            raise exceptions.ValidationError(EMPTY_DOCX)
        docx = upload.read()
        try:
            # A file that is no .docx at all is told so here (the pool would read it as base64 text).
            check_docx_archive(docx, conversion_limits())
            converted = async_to_sync(conversion_pool().convert)(docx, "docx", self.owner())
        except ConversionError as error:
            raise DocumentRejected(error_text("E2002", error.reason)) from None
        # Read here, not in the pool: a few elements at the start of two small parts.
        language = document_language(docx, 'dir="rtl"' in converted.html, conversion_limits())
        return Response({"html": converted.html, "document_language": language})


def conversion_exception_handler(exc, context):
    """Refusals as {"success": false, "message"}; a document that cannot be converted as section 6's error."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(too_large_text(settings.COLLAB_MAX_MESSAGE_BYTES))
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ParseError("too many form fields")
    if isinstance(exc, DocumentRejected):
        return Response(api_error_body("E2002", str(exc.detail)), status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        message = (
            NO_CREDENTIALS if isinstance(exc, exceptions.NotAuthenticated) else describe_detail(exc.detail)
        )
        response = Response(conversion_refusal_body(message), status=exc.status_code)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(math.ceil(exc.wait))
        return response
    if isinstance(exc, DatabaseError):
        log.warning("conversion request failed: database unavailable", exc_info=exc)
        return Response(conversion_refusal_body("Database unavailable, try again later."), status=503)
    log.error("conversion request failed", exc_info=exc)
    return Response(conversion_refusal_body(f"{ERROR_TEXTS['E2001']}."), status=500)

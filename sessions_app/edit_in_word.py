"""Edit in Word (PROTOCOL.md section 10): the launch links the field's editor plugin asks for, their files.

The plugin posts its editor's HTML with the host application's integration key. The HTML,
sanitised in the conversion pool, becomes a new session's first version; made into a .docx
whose custom properties `sessionId` and `token` carry the session's id and a new word token,
it lets the Word add-in connect from the document by itself. The .docx is kept in the database,
so that every server process can serve it, until the session ends or COLLAB_LAUNCH_LINK_TTL
passes. Errors are section 10's `{"success": false, "errorCode", …}`, with CORS headers for
the origins in COLLAB_ALLOWED_ORIGINS (django-cors-headers, settings.CORS_URLS_REGEX).
"""

import logging
import math
import re
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from conversion import ConversionError
from conversion.html_docx import first_heading

from . import bounded_json, links
from .api import DOCX_MEDIA_TYPE, PayloadTooLarge
from .authentication import IntegrationKeyAuthentication, IntegrationKeyRateThrottle, integration_key_of
from .models import CollabSession, LaunchFile, SessionToken
from .protocol import (
    MAX_FRAME_DEPTH,
    MAX_FRAME_VALUES,
    launch_link_body,
    launch_link_error_body,
    too_large_text,
)
from .publishing import conversion_pool
from .services import (
    KeyRevoked,
    SessionCapReached,
    do_start_edit_in_word,
    has_session_room,
    publish_code_expiry,
)

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Document"
WORD_TOKEN_LABEL = "Edit in Word: in the document's properties"  # noqa: S105 - words, not a secret
MISSING_HTML = 'the body must be a JSON object with the HTML in "Html"'
# What Windows and macOS refuse in a file name, and control characters.
UNFIT_IN_FILE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
MAX_FILE_NAME_CHARACTERS = 100


class LaunchRefused(exceptions.APIException):
    """A launch link request refused with one of section 10's codes."""

    def __init__(self, status_code, error_code, detail=None):
        super().__init__(detail or "")
        self.status_code = status_code
        self.error_code = error_code


class BoundedJSONParser(BaseParser):
    """A JSON body of at most COLLAB_MAX_MESSAGE_BYTES, read with a bound on its values and nesting."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.COLLAB_MAX_MESSAGE_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(too_large_text(limit))
        try:
            return bounded_json.loads(body.decode("utf-8"), MAX_FRAME_VALUES, MAX_FRAME_DEPTH)
        except ValueError:  # UnicodeDecodeError and TooComplex are ValueErrors too
            raise exceptions.ParseError("the body is not a JSON object") from None


def posted_html(data, names=("Html", "html")):
    """The HTML of a posted JSON object, under the first of `names` that holds text; None if none does."""
    if not isinstance(data, dict):
        return None
    html = next((data[name] for name in names if isinstance(data.get(name), str)), None)
    return html if html is not None and html.strip() else None


class HoldsIntegrationKey(BasePermission):
    """Only integration keys ask for launch links (staff create sessions in the admin or the API)."""

    def has_permission(self, request, view):
        return integration_key_of(request) is not None


@extend_schema(exclude=True)  # section 10's own contract, outside /api/ (docs/API.md)
class LaunchLinkView(APIView):
    """POST /edit-in-word/generate-word-launch-link: a session made of the editor's HTML, its Word link."""

    authentication_classes = [IntegrationKeyAuthentication]
    permission_classes = [HoldsIntegrationKey]
    throttle_classes = [IntegrationKeyRateThrottle]
    parser_classes = [BoundedJSONParser]

    def get_exception_handler(self):
        return launch_link_exception_handler

    def post(self, request):
        key = request.auth
        html = posted_html(request.data)
        if html is None:
            raise LaunchRefused(400, "H1001", MISSING_HTML)
        # Checked before the conversions, and again under a lock when the session is stored.
        if not has_session_room(key):
            raise session_cap_refusal(key)
        owner = f"integration-key:{key.pk}"
        try:
            converted = async_to_sync(conversion_pool().convert)(html, "html", owner)
            session = CollabSession(title=title_of(converted.html))
            word_token, word_secret = SessionToken.build(
                session, SessionToken.Role.WORD, label=WORD_TOKEN_LABEL, expires_at=publish_code_expiry()
            )
            docx = docx_of(html, {"sessionId": session.id, "token": word_secret}, session.title, owner)
        except ConversionError as error:
            raise LaunchRefused(400, "H1007", error.reason) from None
        launch_file = LaunchFile(
            session=session,
            file_name=file_name_for(session.title),
            content=docx,
            expires_at=timezone.now() + timedelta(seconds=settings.COLLAB_LAUNCH_LINK_TTL),
        )
        try:
            do_start_edit_in_word(key, session, word_token, converted, launch_file)
        except SessionCapReached:
            raise session_cap_refusal(key) from None
        except KeyRevoked:
            raise LaunchRefused(401, "H1002", "the integration key was revoked") from None
        body = launch_link_body(
            session.id,
            links.word_launch_url(launch_file),
            documentUrl=links.launch_file_url(launch_file),
            expiresAt=launch_file.expires_at.isoformat(),
        )
        return Response(body)


def session_cap_refusal(key):
    return LaunchRefused(400, "H1006", f"the key holds its maximum of {key.max_sessions} active sessions")


def title_of(html):
    """A session's title: the HTML's first heading, else DEFAULT_TITLE."""
    heading = " ".join((first_heading(html) or "").split())
    return heading[:200] or DEFAULT_TITLE


def docx_of(html, properties, title, owner):
    """The .docx of posted HTML with these custom document properties; ConversionError if none can be made.

    Made in a conversion worker (its timeout and memory limit), shared fairly between owners.
    """
    return async_to_sync(conversion_pool().html_to_docx)(html, properties, title, owner)


def file_name_for(title):
    """The .docx's file name: its title without what file systems refuse, or DEFAULT_TITLE."""
    name = " ".join(UNFIT_IN_FILE_NAME.sub(" ", title).split()).strip(". ")
    return f"{name[:MAX_FILE_NAME_CHARACTERS].rstrip('. ') or DEFAULT_TITLE}.docx"


def launch_link_exception_handler(exc, context):
    """Every refusal of a launch link request in section 10's shape, so the plugin can read it."""
    status, code, detail = refusal_of(exc)
    response = Response(launch_link_error_body(code, detail), status=status)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(math.ceil(exc.wait))
    return response


def refusal_of(exc):
    """(HTTP status, section 10 code, detail) of an exception raised while answering a launch link request."""
    if isinstance(exc, LaunchRefused):
        return exc.status_code, exc.error_code, str(exc.detail)
    if isinstance(exc, exceptions.NotAuthenticated):
        return 401, "H1002", "an integration key is needed in the Token header"
    if isinstance(exc, exceptions.AuthenticationFailed):
        return 401, "H1002", "unknown or revoked integration key"
    if isinstance(exc, exceptions.Throttled):
        return 429, "H1008", "too many requests with this integration key, try again later"
    if isinstance(exc, exceptions.APIException) and exc.status_code < 500:
        return exc.status_code if exc.status_code in (405, 413) else 400, "H1001", str(exc.detail)
    if isinstance(exc, DatabaseError):
        log.warning("launch link request failed: database unavailable", exc_info=exc)
        return 503, "H2002", "database unavailable, try again later"
    log.error("launch link request failed", exc_info=exc)
    return 500, "H2001", None


@require_http_methods(["GET", "HEAD", "OPTIONS"])
def launch_file(request, file_id, file_name):
    """The .docx of a launch link, to anyone holding its URL, while its session is active and the link lives.

    Word downloads it itself, without credentials. The name in the path is for Word's title bar only.
    """
    if request.method == "OPTIONS":  # Word asks what the server allows before it opens a URL
        response = HttpResponse()
        response["Allow"] = "GET, HEAD, OPTIONS"
        return response
    launch = LaunchFile.objects.filter(
        pk=file_id, expires_at__gt=timezone.now(), session__status=CollabSession.Status.ACTIVE
    ).first()
    if launch is None:
        return HttpResponseNotFound("No such file, or its link has expired.\n", content_type="text/plain")
    content = bytes(launch.content)
    response = HttpResponse(b"" if request.method == "HEAD" else content, content_type=DOCX_MEDIA_TYPE)
    response["Content-Length"] = str(len(content))
    response["Content-Disposition"] = content_disposition_header(True, launch.file_name)
    # It holds a word token: no browser or proxy may keep a copy.
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response

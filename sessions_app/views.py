"""HTTP pages: landing page, viewer, Try Edit in Word, add-in manifest and task pane, static, healthz."""

import asyncio
import logging
import uuid
from functools import wraps
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.staticfiles.views import serve
from django.core.exceptions import SuspiciousFileOperation
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from .links import viewer_url, ws_url
from .models import CollabSession, SessionToken
from .services import do_issue_token

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3
OFFICE_JS_ORIGIN = "https://appsforoffice.microsoft.com"


def websocket_origins(request):
    """The ws(s) origins a page may connect to: the public URL's and the one the page was loaded from."""
    public = urlsplit(ws_url())
    origins = [f"{public.scheme}://{public.netloc}"]
    own = f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}"
    if own not in origins:
        origins.append(own)
    return origins


def content_security_policy(request, *, script_src, style_src, frame_ancestors):
    """A CSP that allows scripts only from files, never inline, and the WebSocket of this server only."""
    directives = {
        "default-src": ["'none'"],
        "script-src": script_src,
        "style-src": style_src,
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *websocket_origins(request)],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": frame_ancestors,
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items() if values)


def with_page_headers(**policy):
    """Send the page with its Content-Security-Policy, no Referer, and no caching of the page itself."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = content_security_policy(request, **policy)
            response["Referrer-Policy"] = "no-referrer"
            response["Cache-Control"] = "no-store"
            return response

        return wrapped

    return decorate


DEMO_SESSION_TITLE = "Demo session"  # the title `make run` gives its session


@require_safe
@with_page_headers(script_src=["'self'"], style_src=["'self'"], frame_ancestors=["'none'"])
def landing(request):
    """What collab is, where its admin and API docs are, and how to start a session."""
    return render(request, "landing.html", {"demo_viewer_url": demo_viewer_url() if settings.DEBUG else None})


def demo_viewer_url():
    """In development only: a viewer link to the newest active demo session, with a fresh viewer token.

    Tokens are stored hashed, so the link `make run` printed cannot be shown again; a new one is issued.
    """
    session = CollabSession.objects.filter(
        title=DEMO_SESSION_TITLE, status=CollabSession.Status.ACTIVE
    ).first()
    if session is None:
        return None
    _, secret = do_issue_token(session, SessionToken.Role.CLIENT, label="landing page (development)")
    return viewer_url(session.id, secret)


@require_safe
@with_page_headers(script_src=["'self'"], style_src=["'self'"], frame_ancestors=["'none'"])
def viewer(request, session_id):
    """The viewer page of any session id; the page asks the WebSocket, which refuses unknown ones in words.

    The page never looks the session up, so it tells nobody without a token whether the session exists.
    """
    return render(request, "viewer.html", {"session_id": session_id})


@require_safe
@staff_member_required
@with_page_headers(script_src=["'self'"], style_src=["'self'"], frame_ancestors=["'none'"])
def try_edit_in_word(request):
    """Staff try Edit in Word's whole journey with an editable area, a key they paste, and Word."""
    return render(request, "editinword/try.html")


# Word on the web shows the task pane in a frame of an Office domain, and office.js may add
# <style> elements; so the task pane may be framed by Office's hosts (COLLAB_ADDIN_FRAME_ANCESTORS)
# and may carry inline styles, but no inline script. Desktop Word shows it unframed.
@require_safe
@xframe_options_exempt
@with_page_headers(
    script_src=["'self'", OFFICE_JS_ORIGIN],
    style_src=["'self'", "'unsafe-inline'"],
    frame_ancestors=settings.COLLAB_ADDIN_FRAME_ANCESTORS,
)
def addin_taskpane(request):
    """The Word add-in's task pane (PROTOCOL.md section 8)."""
    return render(request, "addin/taskpane.html", {"public_url": settings.COLLAB_PUBLIC_URL})


@require_safe
def addin_manifest(request):
    """The add-in's Office XML manifest, pointing at this server's public URL."""
    public_url = settings.COLLAB_PUBLIC_URL
    context = {
        # One stable id per deployment, so add-ins of two servers can be installed side by side.
        "addin_id": uuid.uuid5(uuid.NAMESPACE_URL, public_url),
        "public_url": public_url,
        "public_host": urlsplit(public_url).netloc,
    }
    response = render(request, "addin/manifest.xml", context, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="collab-manifest.xml"'
    return response


@require_safe
def static_file(request, path):
    """Static files in every mode: plain daphne serves no /static/, and the project needs no build step."""
    try:
        response = serve(request, path, insecure=True)
    except SuspiciousFileOperation:
        raise Http404("no such file") from None  # a path leading out of the static directories
    response["Cache-Control"] = "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


async def healthz(request):
    """200 when the database and the channel layer answer, 503 otherwise."""
    checks = {
        "database": await sync_to_async(check_database)(),
        "channel_layer": await check_channel_layer(),
    }
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "unavailable"}
    body.update({name: "ok" if passed else "failing" for name, passed in checks.items()})
    return JsonResponse(body, status=200 if healthy else 503)


def check_database():
    """Whether the database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        log.warning("health check: database unavailable", exc_info=True)
        return False


async def check_channel_layer():
    """Whether a message sent through the channel layer comes back."""
    layer = get_channel_layer()

    async def round_trip():
        channel = await layer.new_channel("healthz.")
        await layer.send(channel, {"type": "healthz"})
        return (await layer.receive(channel)).get("type") == "healthz"

    try:
        return await asyncio.wait_for(round_trip(), CHECK_TIMEOUT)
    except Exception:
        log.warning("health check: channel layer unavailable", exc_info=True)
        return False

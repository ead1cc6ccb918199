"""The URLs and codes that tell people how to connect to a session."""

import base64
import json
from urllib.parse import quote

from django.conf import settings


def ws_url():
    """The server's WebSocket endpoint, derived from COLLAB_PUBLIC_URL."""
    base = settings.COLLAB_PUBLIC_URL
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


def viewer_url(session_id, client_secret):
    """The viewer link; the token lives in the fragment so it never reaches a server log."""
    return f"{settings.COLLAB_PUBLIC_URL}/s/{session_id}/#token={client_secret}"


def publish_code(session_id, word_secret):
    """One pasteable string carrying what the Word add-in needs to publish."""
    payload = json.dumps(
        {"s": session_id, "t": word_secret, "u": settings.COLLAB_PUBLIC_URL}, separators=(",", ":")
    )
    return "collab:" + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def connection_details(session, word_secret, client_secret):
    """Everything a new session's creator needs, with both plain-text tokens."""
    return {
        "id": session.id,
        "title": session.title,
        "word_token": word_secret,
        "client_token": client_secret,
        "viewer_url": viewer_url(session.id, client_secret),
        "ws_url": ws_url(),
        "publish_code": publish_code(session.id, word_secret),
        "manifest_url": f"{settings.COLLAB_PUBLIC_URL}/addin/manifest.xml",
    }


def launch_link_endpoint():
    """Where the field's editor plugin asks for launch links (its editinword_generate_url)."""
    return f"{settings.COLLAB_PUBLIC_URL}/edit-in-word/generate-word-launch-link"


def launch_file_url(launch_file):
    """Where Word downloads an Edit in Word .docx; its name ends the path, as Word's title bar shows it."""
    name = quote(launch_file.file_name, safe="")
    return f"{settings.COLLAB_PUBLIC_URL}/edit-in-word/files/{launch_file.pk}/{name}"


def word_launch_url(launch_file):
    """The link that opens the .docx in Word (Office URI scheme: open for editing, from a URL)."""
    return f"ms-word:ofe|u|{launch_file_url(launch_file)}"

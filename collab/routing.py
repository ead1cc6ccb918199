"""WebSocket routes."""

from django.urls import re_path

from sessions_app.consumers import CollabConsumer, refuse_unknown_path

websocket_urlpatterns = [
    re_path(r"^ws/?$", CollabConsumer.as_asgi()),
    # Last: any other path is refused with 404 at the handshake, not an error in the log.
    re_path(r"", refuse_unknown_path),
]

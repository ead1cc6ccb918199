"""WebSocket routes."""

from django.urls import re_path

from sessions_app.consumers import CollabConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", CollabConsumer.as_asgi()),
]

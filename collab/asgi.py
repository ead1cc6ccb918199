"""ASGI entry point: `daphne collab.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collab.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from collab.routing import websocket_urlpatterns  # noqa: E402
from sessions_app import daphne_adaptations  # noqa: E402

daphne_adaptations.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origins are checked by the consumer itself, which must still accept Origin-less scripts.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

"""ASGI entry point: `daphne collab.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collab.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from collab.handshakes import apply_lazy_debug_text  # noqa: E402
from collab.routing import websocket_urlpatterns  # noqa: E402
from collab.transport import apply_message_limit, offer_direct_sockets  # noqa: E402

apply_message_limit()
apply_lazy_debug_text()
offer_direct_sockets()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origins are checked by the consumer itself, which must still accept Origin-less scripts.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

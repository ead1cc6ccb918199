"""HTTP views."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3


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

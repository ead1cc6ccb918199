"""Asyncio Redis clients for presence and connection limits, one per event loop."""

import asyncio

# A crowd arriving at once waits for one of these connections instead of failing:
# redis-py's plain pool refuses outright beyond 100 connections.
POOL_SIZE = 20
POOL_WAIT = 10

_clients = {}  # (url, timeout) -> (event loop, client)


def redis_client(url, timeout):
    """This event loop's client for `url`, whose commands give up after `timeout` seconds."""
    import redis.asyncio

    loop = asyncio.get_running_loop()
    loop_and_client = _clients.get((url, timeout))
    if loop_and_client is None or loop_and_client[0] is not loop:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        loop_and_client = (loop, redis.asyncio.Redis(connection_pool=pool))
        _clients[(url, timeout)] = loop_and_client
    return loop_and_client[1]

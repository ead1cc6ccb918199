"""Stopping background tasks that talk to Redis, although redis-py can swallow a cancellation.

A cancellation that lands while redis-py (7 and 8 alike) is connecting or sending is lost:
the command goes on, and a loop around it never ends, so the event loop never finishes
closing (seen as a test run hanging in its teardown). Loops check `stopping()` after each
step, and a blocking receive is cancelled again until it has really ended.
"""

import asyncio

RECANCEL_SECONDS = 0.1


def stopping():
    """Whether the running task was asked to stop, even if what it awaited swallowed the request."""
    return asyncio.current_task().cancelling() > 0


def cancel_until_done(task):
    """Cancel a task, and again every RECANCEL_SECONDS until it has ended."""
    if not task.done():
        task.cancel()
        asyncio.get_running_loop().call_later(RECANCEL_SECONDS, cancel_until_done, task)


async def cancellable(awaitable):
    """Await a blocking Redis call in a task of its own, which is cancelled until it ends if we are."""
    task = asyncio.ensure_future(awaitable)
    # Its outcome once abandoned is of no interest: read it so asyncio does not log it.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancel_until_done(task)
        raise

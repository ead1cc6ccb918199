"""channels' in-memory channel layer, made to serve thousands of sockets in one process."""

import time

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    """The in-memory layer, sweeping expired messages at most once a second.

    channels sweeps every channel on every receive and group_send, so each of N sockets
    waking up cost O(N): a broadcast to a thousand viewers, or a thousand arriving at once,
    spent most of its time there. Expiry is a safety net measured in a minute; a second's
    delay in sweeping changes nothing.
    """

    SWEEP_EVERY = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._swept_at = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_EVERY:
            self._swept_at = now
            super()._clean_expired()

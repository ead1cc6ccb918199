"""Who is connected to each session, per role."""

from collections import Counter, defaultdict


class LocalPresence:
    """Connection counts of this server process."""

    def __init__(self):
        self._counts = defaultdict(Counter)

    async def join(self, session_id, role, channel_name):
        """Count a socket that joined a session."""
        self._counts[session_id][role] += 1

    async def leave(self, session_id, role, channel_name):
        """Stop counting a socket that left a session."""
        counts = self._counts.get(session_id)
        if counts is None:
            return
        counts[role] -= 1
        if not +counts:
            del self._counts[session_id]

    async def counts(self, session_id):
        """(viewers, publishers) connected to a session."""
        counts = self._counts.get(session_id, Counter())
        return counts["client"], counts["word"]


presence = LocalPresence()

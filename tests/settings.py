"""collab's own settings for the test process, which runs with DJANGO_DEBUG off and so needs a secret key.

The key is the run's (tests/servers.py); the daphne and manage.py processes the tests start
get the same one.
"""

import os

from tests.servers import RUN_SECRET_KEY

os.environ.setdefault("DJANGO_SECRET_KEY", RUN_SECRET_KEY)

from collab.settings import *  # noqa: E402, F403

# The in-process tests' sockets are not checked for sessions ended elsewhere every few seconds:
# tests that want it turn it on (tests/test_expiry.py); daphne processes keep the default.
COLLAB_ENDED_CHECK_INTERVAL = 0

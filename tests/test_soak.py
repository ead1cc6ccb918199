"""A one-minute run of bench/soak.py: load on two daphne processes loses nothing and leaks no memory.

The full soak (10 sessions of 100 viewers for 10 minutes, docs/RELIABILITY.md) is run by hand.
Here it runs for 60 seconds with 3 sessions of 30 viewers each, so the two daphne processes, the
conversion workers and the test's 90 clients fit beside the rest of the suite on two cores.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.servers import REPO_ROOT, child_env

pytestmark = [pytest.mark.soak, pytest.mark.integration]

POSTGRES_URL = os.environ.get("COLLAB_DRILL_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def test_one_minute_soak_loses_nothing(redis_url):
    command = [
        sys.executable,
        "bench/soak.py",
        "--seconds",
        "60",
        "--sessions",
        "3",
        "--viewers",
        "30",
        "--postgres",
        POSTGRES_URL,
        "--redis",
        redis_url,
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=child_env({}), capture_output=True, text=True, timeout=240, check=False
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["verdict"] == "pass", figures
    assert done.returncode == 0
    assert figures["viewers_behind"] == 0 and figures["acknowledged_but_not_stored"] == 0
    # Two updates a second for a minute in each session: nearly all of them confirmed.
    assert figures["updates_acknowledged"] >= 3 * 60 * 2 * 0.8, figures
    assert figures["viewer_joins"] > figures["viewers_at_end"]  # viewers did come and go

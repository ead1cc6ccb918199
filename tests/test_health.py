"""/healthz answers for the database and the channel layer."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.servers import REPO_ROOT, child_env, free_port


@pytest.mark.django_db
def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok"}


@pytest.mark.integration
def test_healthz_503_when_channel_layer_is_down(integration_database_url):
    port = free_port()
    env = child_env(
        {"DATABASE_URL": integration_database_url, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "collab.asgi:application"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)  # noqa: S310
                status, body = 200, {}
            except urllib.error.HTTPError as error:
                status, body = error.code, json.loads(error.read())
            except OSError:
                assert time.monotonic() < deadline, "daphne did not start"
                time.sleep(0.3)
                continue
            break
        assert status == 503
        assert body == {"status": "unavailable", "database": "ok", "channel_layer": "failing"}
    finally:
        server.kill()
        server.wait()

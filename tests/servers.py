"""Real daphne processes for the integration tests, started the way a deployer starts them."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30
STOP_SECONDS = 10
# The test process's own configuration must not leak into the servers; each test says what they use.
INHERITED_SKIPPED = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
# DJANGO_DEBUG is off unless asked for, as in production, and then a secret key is needed: one per run.
RUN_SECRET_KEY = secrets.token_urlsafe(50)


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(overrides):
    """The environment of a server or manage.py process: ours, minus collab's settings, plus overrides."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in INHERITED_SKIPPED and not name.startswith("COLLAB_")
    }
    env.setdefault("DJANGO_SECRET_KEY", RUN_SECRET_KEY)
    env.update(DJANGO_SETTINGS_MODULE="collab.settings", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def run_manage(env, *args, timeout=120, code=REPO_ROOT):
    """Run a manage.py command of the checkout `code` to completion; its stdout, or an AssertionError."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"manage.py {args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def create_superuser(env, password, username="staff"):
    """A superuser in the database `env` names, made as an operator makes one."""
    run_manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": password},
        "createsuperuser",
        "--no-input",
        "--username",
        username,
        "--email",
        f"{username}@example.org",
    )


class Server:
    """One daphne process serving collab on a loopback port (from this checkout, or the one at `code`)."""

    def __init__(self, env_overrides, port=None, code=REPO_ROOT):
        self.code = code
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.env = child_env({"COLLAB_PUBLIC_URL": self.url, **env_overrides})
        self.process = None
        self.log = None

    def start(self):
        """Start daphne and wait until /healthz answers 200."""
        # A file, not a pipe: nobody reads a pipe while the server runs, and a full one would block it.
        self.log = tempfile.NamedTemporaryFile(prefix=f"daphne-{self.port}-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", *self.listen_args(), "collab.asgi:application"],
            cwd=self.code,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_until_healthy()
        return self

    def listen_args(self):
        """Where daphne listens, as its command line says it."""
        return ["-b", "127.0.0.1", "-p", str(self.port)]

    def wait_until_healthy(self):
        deadline = time.monotonic() + STARTUP_SECONDS
        # No proxy: the server is on loopback whatever the environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        last_problem = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.output_tail()
                self._forget()
                raise RuntimeError(f"daphne exited with {self.process.returncode}:\n{tail}")
            try:
                with opener.open(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
                    last_problem = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                last_problem = f"HTTP {error.code}: {error.read()[:200]!r}"
            except OSError as error:
                last_problem = str(error)
            time.sleep(0.1)
        tail = self.output_tail()
        self.kill()
        raise RuntimeError(
            f"daphne on port {self.port} not healthy after {STARTUP_SECONDS} s ({last_problem}):\n{tail}"
        )

    def output_tail(self, lines=40):
        """The last lines daphne wrote to stdout and stderr."""
        if self.log is None:
            return ""
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        """SIGTERM, as a service manager stops it; SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return self._forget()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_SECONDS)
        return self._forget()

    def kill(self):
        """SIGKILL: the process dies without any chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_SECONDS)
        return self._forget()

    def restart(self):
        """Stop (if still running) and start again on the same port, database and settings."""
        self.stop()
        return self.start()

    def _forget(self):
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None
        return self

    def manage(self, *args, timeout=120):
        """Run a manage.py command against this server's database and settings; its stdout."""
        return run_manage(self.env, *args, timeout=timeout, code=self.code)

    def create_session(self, title="integration"):
        """A new session: a dict with id, word_token, client_token, viewer_url and ws_url."""
        return json.loads(self.manage("create_session", "--json", "--title", title))


def start_daphne(env_overrides):
    """Start a daphne process with these settings on a free loopback port; returns it once healthy."""
    return Server(env_overrides).start()

"""`make install` and `make run` as a newcomer meets them: the Python check, the install, the printed block.

The Makefile runs in a temporary copy with fake Pythons, so no real pip install happens; the demo
script runs with this checkout's virtualenv against a temporary database.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.servers import REPO_ROOT, child_env, free_port

# A fake python3.10 or 3.11: reports its version; `-m venv DIR` builds a DIR whose python
# passes or fails every pip install as its `pip` script says, noisily either way.
FAKE_PYTHON = """#!/bin/sh
case "$1 $2" in
    "-m venv") mkdir -p "$3/bin" && cp "$0-in-venv" "$3/bin/python" ;;
    *) echo {version} ;;
esac
"""
PIP_FAILS = 'echo "ERROR: No matching distribution found for websockets==17.4"; exit 1'


def make_copy(tmp_path):
    """The files `make install` needs, in a directory of their own."""
    copy = tmp_path / "clone"
    copy.mkdir()
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO_ROOT / name, copy / name)
    shutil.copytree(REPO_ROOT / "scripts", copy / "scripts")
    return copy


def fake_python(tmp_path, version, pip="exit 0"):
    path = tmp_path / f"python{version}"
    path.write_text(FAKE_PYTHON.replace("{version}", version))
    in_venv = tmp_path / f"python{version}-in-venv"
    in_venv.write_text(f'#!/bin/sh\necho "Collecting websockets==17.4 (noise)"\n{pip}\n')
    for script in (path, in_venv):
        script.chmod(0o755)
    return path


def make(copy, *args):
    return subprocess.run(
        ["make", "-C", str(copy), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("target", ["install", "run"])
def test_an_old_python_is_refused_at_once_and_builds_nothing(tmp_path, target):
    copy = make_copy(tmp_path)
    python = fake_python(tmp_path, "3.10")
    done = make(copy, target, f"PYTHON={python}")
    assert done.returncode != 0
    assert f"collab needs Python 3.11 or newer; found 3.10 at {python}; set PYTHON=" in done.stderr
    assert not (copy / ".venv").exists()


def test_a_failed_install_shows_pips_output_and_leaves_no_virtualenv(tmp_path):
    copy = make_copy(tmp_path)
    (copy / ".venv" / "bin").mkdir(parents=True)  # what an earlier failed run left: no marker
    (copy / ".venv" / "leftover").write_text("")
    done = make(copy, "install", f"PYTHON={fake_python(tmp_path, '3.11', PIP_FAILS)}")
    assert done.returncode != 0
    assert "No matching distribution found for websockets==17.4" in done.stderr
    assert not (copy / ".venv").exists()


def test_a_good_install_is_quiet_and_marked_last(tmp_path):
    copy = make_copy(tmp_path)
    (copy / ".venv").mkdir()
    (copy / ".venv" / "leftover").write_text("")
    done = make(copy, "install", f"PYTHON={fake_python(tmp_path, '3.11')}")
    assert done.returncode == 0, done.stderr
    assert "Collecting" not in done.stdout + done.stderr
    assert (copy / ".venv" / "installed").exists()
    assert not (copy / ".venv" / "leftover").exists()  # rebuilt, not reused
    assert make(copy, "-q", "install").returncode == 0  # up to date now


def test_the_banner_lines_up_what_to_open_and_type():
    details = {
        "id": "abcDEF123",
        "title": "Demo session",
        "word_token": "word-secret",
        "client_token": "client-secret",
        "viewer_url": "http://10.1.2.3:8123/s/abcDEF123/#token=client-secret",
        "ws_url": "ws://10.1.2.3:8123/ws",
    }
    done = subprocess.run(
        [".venv/bin/python", "scripts/demo_banner.py", ".venv"],
        cwd=REPO_ROOT,
        input=json.dumps(details),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = dict(re.findall(r"^  (\S.*?\S)  +(\S.*)$", done.stdout, re.MULTILINE))
    assert rows["Open the viewer"] == details["viewer_url"]
    assert rows["Publish a sample"] == (
        "DJANGO_DEBUG=1 COLLAB_TOKEN=word-secret .venv/bin/python manage.py publish abcDEF123 "
        "samples/report.docx --url ws://10.1.2.3:8123/ws --watch"
    )
    assert (REPO_ROOT / "samples" / "report.docx").is_file()  # the command runs as printed
    own_file = "(or your own file in place of samples/report.docx)"
    lines = done.stdout.splitlines()
    publish_line = next(index for index, line in enumerate(lines) if "Publish a sample" in line)
    assert lines[publish_line + 1].strip() == own_file  # on a line of its own, under the command
    assert rows["Admin"].startswith("http://10.1.2.3:8123/admin/") and "createsuperuser" in rows["Admin"]
    assert rows["API docs"] == "http://10.1.2.3:8123/api/docs/"
    starts = {line.index(value) for line in lines for value in [*rows.values(), own_file] if value in line}
    assert len(starts) == 1  # one column


def run_demo(tmp_path, port):
    """Start scripts/run_demo.sh with HOST=0.0.0.0; the process and the rows it printed."""
    everywhere = "0.0.0.0"  # noqa: S104 - what is tested: serving other machines
    env = child_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "HOST": everywhere, "PORT": str(port)}
    )
    env.pop("DJANGO_SECRET_KEY")
    process = subprocess.Popen(
        ["scripts/run_demo.sh", ".venv"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    rows = {}
    for line in process.stdout:
        if match := re.match(r"^  (\S.*?\S)  +(\S.*)$", line):
            rows[match[1]] = match[2]
        if "API docs" in rows:
            return process, rows
    raise AssertionError(f"run_demo.sh exited with {process.wait()} before printing its block")


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    process.stdout.close()


def status_by_host(url, host):
    """The HTTP status of url, asked of the loopback address with this Host header."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    loopback = re.sub(r"//[^/:]+", "//127.0.0.1", url, count=1)
    request = urllib.request.Request(loopback, headers={"Host": host})  # noqa: S310 - always http://
    for _ in range(100):
        try:
            with opener.open(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:  # not listening yet
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url}")


def test_run_on_all_interfaces_prints_an_openable_allowed_address_and_reuses_the_session(tmp_path):
    port = free_port()
    process, rows = run_demo(tmp_path, port)
    try:
        viewer = rows["Open the viewer"]
        host = re.match(r"http://([^/]+)/s/", viewer)[1]
        assert host.endswith(f":{port}") and not host.startswith("0.0.0.0")  # noqa: S104
        assert f"--url ws://{host}/ws" in rows["Publish a sample"]
        assert status_by_host(viewer, host) == 200
        assert status_by_host(viewer, "elsewhere.example") == 400  # hosts are checked at all
    finally:
        stop(process)
    process, again = run_demo(tmp_path, port)
    stop(process)
    session_id = viewer.split("/s/")[1].split("/")[0]
    assert f"/s/{session_id}/" in again["Open the viewer"]
    assert again["Open the viewer"] != viewer  # fresh tokens

"""Fan-out benchmarks against real daphne processes and the `websockets` baseline relay.

    .venv/bin/python bench/fanout.py                    # everything (about 15 minutes on 2 cores)
    .venv/bin/python bench/fanout.py latency storm      # some scenarios
    .venv/bin/python bench/fanout.py --quick            # small N, few updates: a smoke run

Scenarios (results go in docs/PERFORMANCE.md, "Fan-out"):

- latency: a Word client sends a pre-converted update (`PayloadType: "html"`, so mammoth is
  not timed; nh3 sanitising and the database write are) and we time until the last of N
  viewers holds it; p50 and p99 over many updates, each sent as soon as the one before is
  held, or (`--gap MS`) that long after it: the Word add-in sends 100 ms after a selection
  change at the soonest.
- bytes: bytes a viewer receives for a one-paragraph edit of a 50-page document, with and
  without html-patch.
- storm: N viewers connect at once; time until all hold the current document.
- memory: RSS growth of the server process per idle, signed-in viewer connection.
- browser: Word update (a real Flat OPC conversion) until headless Chromium's viewer page
  shows it, for a 20-page document.

Targets: daphne with the in-memory layer (one process), with the real Redis (one process,
and two with the viewers split between them), and bench/baseline_relay.py. Loopback only;
every loop is bounded.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidHandshake  # noqa: E402

from tests.documents import flat_opc  # noqa: E402
from tests.servers import Server, child_env, free_port, run_manage  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
WAIT = 120  # seconds any single step may take before the benchmark gives up
SERVER_ENV = {
    # Every viewer comes from 127.0.0.1 with one token: limits above the crowd, so the checks
    # still run for each connection (the defaults, 5,000, would refuse the 5,000th viewer).
    "COLLAB_MAX_CONNECTIONS_PER_ADDRESS": "100000",
    "COLLAB_MAX_CONNECTIONS_PER_TOKEN": "100000",
    "COLLAB_LOG_LEVEL": "WARNING",
    # As deployed: with DEBUG on, Django also records every query (most of a sign-in's database time).
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
}


# Documents


def paragraph(n, marker=""):
    words = " ".join(f"word{(n * 7 + k) % 97}" for k in range(80))
    return f"<p>Paragraph {n} {marker}: {words}.</p>"


def html_document(pages, marker="", edited=None):
    """About ten paragraphs of 80 words a page; paragraph `edited` carries `marker`."""
    blocks = []
    for n in range(pages * 10):
        if n % 10 == 0:
            blocks.append(f"<h2>Section {n // 10 + 1}</h2>")
        blocks.append(paragraph(n, marker if n == edited else ""))
    return "".join(blocks)


# Servers


class Daphne:
    """One or more daphne processes of the checkout `code` on a fresh database.

    Each is started as a deployer types it, `daphne -b 127.0.0.1 -p PORT collab.asgi:application`:
    no listen backlog or other flag is given (collab raises Twisted's backlog of 50 itself).
    The database is a new SQLite file, or with `postgres` (a server's URL, as
    postgres://user@host:port/db) a new database made on that server and dropped at the end.
    """

    def __init__(self, name, processes=1, redis=False, code=ROOT, postgres=None):
        self.name = name
        self.dropped = None
        if postgres:
            server, _, _ = postgres.rpartition("/")
            database = f"fanout_bench_{secrets.token_hex(4)}"
            psql(postgres, f"CREATE DATABASE {database}")
            self.database = f"{server}/{database}"
            self.dropped = (postgres, database)
        else:
            self.database = f"sqlite:///{tempfile.mkdtemp(prefix='fanout-bench-')}/db.sqlite3"
        migrate_env = child_env({"DATABASE_URL": self.database})
        run_manage(migrate_env, "migrate", "--no-input", timeout=300, code=code)
        env = {"DATABASE_URL": self.database, **SERVER_ENV}
        if redis:
            env.update(REDIS_URL=REDIS_URL, COLLAB_REDIS_PREFIX=f"bench-{secrets.token_hex(4)}")
        self.servers = [Server(env, code=code).start() for _ in range(processes)]
        self.ws_urls = [server.ws_url for server in self.servers]
        self.pids = [server.process.pid for server in self.servers]

    def create_session(self):
        return self.servers[0].create_session("bench")

    def stop(self):
        for server in self.servers:
            server.stop()
        if self.dropped:
            postgres, database = self.dropped
            psql(postgres, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def psql(url, command):
    subprocess.run(["psql", url, "-qc", command], check=True, capture_output=True, timeout=60)


class Baseline:
    """bench/baseline_relay.py in its own process."""

    name = "baseline (websockets relay)"

    def __init__(self):
        port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "baseline_relay.py"), "--port", str(port)],
            stdin=subprocess.DEVNULL,
        )
        self.ws_urls = [f"ws://127.0.0.1:{port}"]
        self.pids = [self.process.pid]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                asyncio.run(self._probe())
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("baseline relay did not start")

    async def _probe(self):
        async with connect(self.ws_urls[0], proxy=None, open_timeout=2):
            pass

    def create_session(self):
        return {"id": "baseline", "word_token": "w", "client_token": "c"}

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def make_targets(names, code=ROOT, postgres=None):
    on = {"code": code, "postgres": postgres}
    makers = {
        "memory": lambda: Daphne("daphne, in-memory layer, 1 process", **on),
        "redis-1": lambda: Daphne("daphne, Redis layer, 1 process", redis=True, **on),
        "redis-2": lambda: Daphne("daphne, Redis layer, 2 processes", processes=2, redis=True, **on),
        "baseline": Baseline,
    }
    return [(name, makers[name]) for name in names]


# Clients


def version_of(frame):
    """The Version of a get-html frame without parsing its (large) Content."""
    at = frame.rfind('"Version": ')
    if at < 0:
        return None
    end = at + 11
    while end < len(frame) and frame[end].isdigit():
        end += 1
    return int(frame[at + 11 : end]) if end > at + 11 else None


class Viewers:
    """N viewer sockets, each noting when it first holds each version."""

    def __init__(self, urls, session, count, features=None):
        self.urls = urls
        self.session = session
        self.count = count
        self.features = features
        self.sockets = []
        self.tasks = []
        self.holders = {}  # version -> number of viewers holding it
        self.complete = {}  # version -> loop time the last viewer got it
        self.waiters = {}
        self.bytes = {}  # version -> sizes of the frames that brought it

    def hello(self, last_version=None):
        message = {
            "Origin": "client",
            "SessionId": self.session["id"],
            "Token": self.session["client_token"],
            "Action": "init",
            "Protocol": 2,
        }
        if self.features:
            message["Features"] = self.features
        if last_version is not None:
            message["LastVersion"] = last_version
        return json.dumps(message)

    async def open_one(self, index):
        url = self.urls[index % len(self.urls)]
        for attempt in range(5):
            try:
                websocket = await connect(
                    url, max_size=None, compression=None, open_timeout=WAIT, proxy=None, ping_interval=None
                )
                break
            except OSError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)
        self.sockets.append(websocket)
        await websocket.send(self.hello())
        self.tasks.append(asyncio.ensure_future(self.read(websocket)))

    async def open(self, batch=250):
        """Connect every viewer, `batch` at a time, and wait until each holds the current version."""
        for start in range(0, self.count, batch):
            await asyncio.gather(*(self.open_one(i) for i in range(start, min(self.count, start + batch))))

    async def read(self, websocket):
        loop = asyncio.get_running_loop()
        try:
            async for frame in websocket:
                if '"Action": "get-html"' not in frame[:200] and '"Action": "html-patch"' not in frame[:200]:
                    continue
                version = version_of(frame) if "get-html" in frame[:200] else json.loads(frame)["Version"]
                self.bytes.setdefault(version, []).append(len(frame.encode()))
                held = self.holders.get(version, 0) + 1
                self.holders[version] = held
                if held == self.count:
                    self.complete[version] = loop.time()
                    waiter = self.waiters.pop(version, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
        except Exception:  # noqa: S110 - a closed socket simply stops counting
            pass

    async def all_hold(self, version, timeout=WAIT):
        if version in self.complete:
            return self.complete[version]
        waiter = self.waiters.setdefault(version, asyncio.get_running_loop().create_future())
        await asyncio.wait_for(waiter, timeout)
        return self.complete[version]

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(websocket.close() for websocket in self.sockets), return_exceptions=True)


class Word:
    """The Word client: sends HTML updates and notes when its own echo of each version arrives."""

    def __init__(self, url, session):
        self.url = url
        self.session = session
        self.version = None

    async def __aenter__(self):
        self.websocket = await connect(
            self.url, max_size=None, compression=None, open_timeout=WAIT, proxy=None, ping_interval=None
        )
        hello = {
            "Origin": "word",
            "SessionId": self.session["id"],
            "Token": self.session["word_token"],
            "Action": "init",
            "Protocol": 2,
        }
        await self.websocket.send(json.dumps(hello))
        async with asyncio.timeout(WAIT):
            while True:
                message = json.loads(await self.websocket.recv())
                if message.get("Action") == "init":
                    self.version = message["Version"]
                    return self

    async def __aexit__(self, *exc):
        await self.websocket.close()

    async def publish(self, content, payload_type="html"):
        """Send an update; the new version once this socket hears it back."""
        update = json.dumps({"Action": "update-ooxml", "PayloadType": payload_type, "Content": content})
        self.sent_at = time.time() * 1000
        await self.websocket.send(update)
        async with asyncio.timeout(WAIT):
            while True:
                frame = await self.websocket.recv()
                if '"Success": false' in frame:
                    raise RuntimeError(frame[:300])
                version = version_of(frame) if '"get-html"' in frame[:200] else None
                if version is not None and version > self.version:
                    self.version = version
                    return version


# Scenarios


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure_latency(target, viewers_count, updates, pages, elsewhere=False, gap=0.0):
    """Word on the first process; its viewers spread over all, or (`elsewhere`) on the others only.

    Each update is sent `gap` seconds after the one before is held.
    """
    session = await asyncio.to_thread(target.create_session)
    viewers = Viewers(target.ws_urls[1:] if elsewhere else target.ws_urls, session, viewers_count)
    async with Word(target.ws_urls[0], session) as word:
        await viewers.open()
        await viewers.all_hold(word.version)
        loop = asyncio.get_running_loop()
        latencies, echoes = [], []
        for update in range(updates):
            html = html_document(pages, marker=f"update {update}", edited=update % (pages * 10))
            if gap:
                await asyncio.sleep(gap)
            started = loop.time()
            version = await word.publish(html)
            echoed = loop.time()
            done = await viewers.all_hold(version)
            latencies.append(done - started)
            echoes.append(echoed - started)
    await viewers.close()
    return {
        "p50": statistics.median(latencies) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "echo_p50": statistics.median(echoes) * 1000,
        "bytes": len(html),
    }


async def measure_bytes(target, pages=50):
    session = await asyncio.to_thread(target.create_session)
    plain = Viewers(target.ws_urls, session, 1)
    patching = Viewers(target.ws_urls, session, 1, features=["html-patch"])
    async with Word(target.ws_urls[0], session) as word:
        await plain.open()
        await patching.open()
        full = html_document(pages, marker="first", edited=pages * 5)
        first = await word.publish(full)
        await plain.all_hold(first)
        await patching.all_hold(first)
        edited = html_document(pages, marker="second", edited=pages * 5)
        second = await word.publish(edited)
        await plain.all_hold(second)
        await patching.all_hold(second)
    await plain.close()
    await patching.close()
    return {"html": len(edited.encode()), "full": plain.bytes[second][0], "patch": patching.bytes[second][0]}


def cpu_seconds(pids):
    """User and system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def measure_storm(target, viewers_count, pages):
    """N viewers connect at the same instant: seconds until all hold the document, server CPU per viewer."""
    session = await asyncio.to_thread(target.create_session)
    async with Word(target.ws_urls[0], session) as word:
        version = await word.publish(html_document(pages))
        viewers = Viewers(target.ws_urls, session, viewers_count)
        cpu_before = cpu_seconds(target.pids)
        started = asyncio.get_running_loop().time()
        await viewers.open(batch=viewers_count)
        done = await viewers.all_hold(version)
        cpu = cpu_seconds(target.pids) - cpu_before
    await viewers.close()
    return {"seconds": done - started, "cpu_ms_per_viewer": cpu * 1000 / viewers_count}


def rss_kib(pids):
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


async def measure_memory(target, viewers_count):
    session = await asyncio.to_thread(target.create_session)
    async with Word(target.ws_urls[0], session) as word:
        version = word.version
    warm = Viewers(target.ws_urls, session, 50)
    await warm.open()
    await warm.all_hold(version)
    await asyncio.sleep(1)
    before = rss_kib(target.pids)
    viewers = Viewers(target.ws_urls, session, viewers_count)
    await viewers.open()
    await viewers.all_hold(version)
    await asyncio.sleep(3)  # presence announcements and the like settle
    after = rss_kib(target.pids)
    await viewers.close()
    await warm.close()
    return {"per_viewer_kib": (after - before) / viewers_count}


def measure_browser(pages, updates):
    """Word update (Flat OPC, converted) until the viewer page's DOM shows it, in headless Chromium."""
    import shutil

    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS

    target = Daphne("daphne, in-memory layer, 1 process")
    try:
        session = target.create_session()
        server = target.servers[0]
        paragraphs = [f"Paragraph {n}: " + " ".join(f"word{k}" for k in range(80)) for n in range(pages * 10)]

        async def publish(content):
            """Publish as Word does; the wall-clock time (ms) the update was sent."""
            async with Word(server.ws_url, session) as word:
                await word.publish(content, payload_type="ooxml")
                return word.sent_at

        asyncio.run(publish(flat_opc(*paragraphs)))
        latencies = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{server.url}/s/{session['id']}/#token={session['client_token']}")
            page.wait_for_function("() => document.getElementById('document').dataset.version === '1'")
            page.evaluate(
                """() => {
                    window.seen = {};
                    const box = document.getElementById('document');
                    new MutationObserver(() => {
                        for (const match of box.textContent.matchAll(/Marker(\\d+)/g)) {
                            window.seen[match[1]] = window.seen[match[1]] || Date.now();
                        }
                    }).observe(box, {childList: true, subtree: true, characterData: true});
                }"""
            )

            for update in range(updates):
                edited = list(paragraphs)
                edited[(update * 7) % len(edited)] = f"Marker{update} changed this paragraph."
                # Playwright's sync API runs a loop in this thread: publish from another one.
                with ThreadPoolExecutor(1) as thread:
                    sent = thread.submit(asyncio.run, publish(flat_opc(*edited))).result()
                page.wait_for_function(f"() => Boolean(window.seen['{update}'])", timeout=WAIT * 1000)
                latencies.append(page.evaluate(f"() => window.seen['{update}']") - sent)
            browser.close()
        return {
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99),
            "html_bytes": len(paragraphs) * len(paragraphs[0]),
        }
    finally:
        target.stop()


# Reporting


def machine():
    cpu = platform.processor() or "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return (
        f"{os.cpu_count()} cores ({cpu}), {int(memory) // 1024} MiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def ratio(value, baseline):
    return f"{value / baseline:.2f}×" if baseline else "n/a"


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def attempt(label, scenario):
    """Run one scenario; its result, or None when it failed (said so), so that the others still run.

    A server that drops handshakes (a full backlog, daphne's handshake timeout) fails a storm:
    those viewers would have had to come back.
    """
    try:
        return asyncio.run(scenario)
    except (TimeoutError, OSError, RuntimeError, InvalidHandshake) as error:
        print(f"{label}: failed ({error!r})", flush=True)
        return None


def main():
    parser = argparse.ArgumentParser(description="Fan-out benchmarks")
    parser.add_argument("scenarios", nargs="*", default=["latency", "bytes", "storm", "memory", "browser"])
    parser.add_argument("--quick", action="store_true", help="small N and few updates")
    parser.add_argument("--viewers", default="1,100,1000,5000", help="viewer counts of the latency scenario")
    parser.add_argument("--storm-viewers", default="1000,5000", help="viewer counts of the storm scenario")
    parser.add_argument("--targets", default="memory,redis-1,redis-2,baseline")
    parser.add_argument(
        "--gap", type=float, default=0.0, metavar="MS", help="latency: wait this long between updates"
    )
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="serve collab from this checkout (to compare two trees)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="store on a new database of this PostgreSQL server (postgres://user@host/db), not SQLite",
    )
    args = parser.parse_args()
    files = raise_file_limit()

    def fitting(counts):
        """The counts whose sockets (a client's and a server's end each) fit the open-files limit."""
        return [count for count in counts if count * 2 + 200 <= files]

    counts = [1, 100] if args.quick else fitting(int(n) for n in args.viewers.split(","))
    storm_counts = [100] if args.quick else fitting(int(n) for n in args.storm_viewers.split(","))
    updates = {1: 10, 100: 10} if args.quick else {1: 100, 100: 50, 1000: 30, 5000: 10}
    print(f"Machine: {machine()}; open files limit {files}")
    targets = make_targets(args.targets.split(","), code=args.code.resolve(), postgres=args.postgres)
    print(f"collab from {args.code.resolve()}, on {'PostgreSQL' if args.postgres else 'SQLite'}")
    results = {}
    for name, make in targets:
        print(f"\n== {name}", flush=True)
        target = make()
        try:
            if "latency" in args.scenarios:
                for count in counts:
                    result = attempt(
                        f"latency N={count}",
                        measure_latency(target, count, updates[count], pages=5, gap=args.gap / 1000),
                    )
                    if result is None:
                        continue
                    results["latency", name, count] = result
                    print(
                        f"latency N={count}: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms "
                        f"(Word's own echo p50 {result['echo_p50']:.1f} ms; {result['bytes']} bytes of HTML)",
                        flush=True,
                    )
                if len(target.ws_urls) > 1 and 1 in counts:
                    # The fixed cost as a viewer on another process than Word's sees it.
                    label = "latency N=1 on another process"
                    result = attempt(
                        label,
                        measure_latency(target, 1, updates[1], pages=5, elsewhere=True, gap=args.gap / 1000),
                    )
                    if result is not None:
                        results["latency", name, "1, elsewhere"] = result
                        print(f"{label}: p50 {result['p50']:.1f} ms", flush=True)
            if "bytes" in args.scenarios and name in ("memory", "baseline"):
                result = asyncio.run(measure_bytes(target))
                results["bytes", name] = result
                print(f"bytes: {result}", flush=True)
            if "storm" in args.scenarios:
                for count in storm_counts:
                    result = attempt(f"storm N={count}", measure_storm(target, count, pages=20))
                    if result is None:
                        continue
                    results["storm", name, count] = result
                    print(
                        f"storm N={count}: {result['seconds'] * 1000:.0f} ms, "
                        f"server CPU {result['cpu_ms_per_viewer']:.2f} ms per viewer",
                        flush=True,
                    )
        finally:
            target.stop()
        if "memory" in args.scenarios and name in ("memory", "baseline"):
            # A fresh process: one that served the scenarios above reuses the memory they freed.
            target = make()
            try:
                result = asyncio.run(measure_memory(target, 200 if args.quick else 2000))
            finally:
                target.stop()
            results["memory", name] = result
            print(f"memory: {result['per_viewer_kib']:.1f} KiB per idle viewer", flush=True)

    print("\n== Summary (ratio to the baseline in brackets)")
    for (kind, name, *rest), result in results.items():
        base_key = (kind, "baseline", *rest)
        base = results.get(base_key)
        if kind == "latency":
            extra = (
                f" [{ratio(result['p50'], base['p50'])} / {ratio(result['p99'], base['p99'])}]"
                if base
                else ""
            )
            print(
                f"latency {name:9} N={rest[0]!s:5}: "
                f"p50 {result['p50']:7.1f} ms  p99 {result['p99']:7.1f} ms{extra}"
            )
        elif kind == "storm":
            extra = (
                f" [{ratio(result['seconds'], base['seconds'])} / "
                f"{ratio(result['cpu_ms_per_viewer'], base['cpu_ms_per_viewer'])}]"
                if base
                else ""
            )
            print(
                f"storm   {name:9} N={rest[0]:5}: {result['seconds'] * 1000:7.0f} ms, "
                f"CPU {result['cpu_ms_per_viewer']:.2f} ms per viewer{extra}"
            )
        elif kind == "memory":
            extra = f" [{ratio(result['per_viewer_kib'], base['per_viewer_kib'])}]" if base else ""
            print(f"memory  {name:9}: {result['per_viewer_kib']:.1f} KiB per viewer{extra}")
        elif kind == "bytes":
            share = result["patch"] / result["html"] * 100
            print(
                f"bytes   {name:9}: HTML {result['html']} B, full frame {result['full']} B, "
                f"with html-patch {result['patch']} B ({share:.2f}% of the HTML)"
            )
    if "browser" in args.scenarios:
        result = measure_browser(pages=20, updates=5 if args.quick else 40)
        print(
            f"browser end-to-end, 20 pages ({result['html_bytes']} chars of text): "
            f"p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms"
        )


if __name__ == "__main__":
    main()

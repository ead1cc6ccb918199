"""Soak test: two daphne processes under steady load for a set time, then a verdict (docs/RELIABILITY.md).

    python bench/soak.py [--seconds 600] [--sessions 10] [--viewers 100] [--rate 2]

Each session has a Word client publishing `--rate` updates a second (each one waited for, as
the add-in does) and `--viewers` viewers that join and leave at random, spread over both
processes, on the real Redis and PostgreSQL: a throwaway database created and dropped here,
a Redis prefix of this run alone. At the end it checks that

- every viewer still connected holds the latest stored version of its session,
- the database holds every version that was acknowledged, with its text, and
- the RSS of both daphne processes did not keep growing (sampled every few seconds;
  the end may not exceed the start, taken after a warm-up, by more than 50 % or 64 MiB,
  whichever is larger).

It prints the figures as one JSON object and exits 0 when all three hold, 1 otherwise.
"""

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from tests.clients import Publisher, Viewer  # noqa: E402
from tests.documents import flat_opc  # noqa: E402
from tests.servers import Server, child_env, run_manage  # noqa: E402

MiB = 1024 * 1024
SAMPLE_SECONDS = 2
CONVERGE_SECONDS = 60


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="how long the load runs (default 600)")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--viewers", type=int, default=100, help="viewers per session at any time")
    parser.add_argument("--rate", type=float, default=2, help="updates a second per Word client")
    parser.add_argument("--mean-stay", type=float, default=20, help="mean seconds a viewer stays")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    return parser.parse_args(argv)


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Throwaway:
    """A migrated PostgreSQL database of this run, dropped at the end."""

    def __init__(self, server_url):
        self.server_url = server_url
        self.name = f"collab_soak_{secrets.token_hex(6)}"
        self.url = urlsplit(server_url)._replace(path=f"/{self.name}").geturl()

    def __enter__(self):
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        run_manage(child_env({"DATABASE_URL": self.url}), "migrate", "--no-input", timeout=300)
        return self

    def __exit__(self, *exc):
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Soak:
    def __init__(self, args, servers, database_url):
        self.args = args
        self.servers = servers
        self.database_url = database_url
        self.urls = [server.ws_url for server in servers]
        self.deadline = None
        self.publishers = []
        self.stayed = []  # (session, viewer) still connected at the end
        self.joins = 0
        self.leaves = 0
        self.samples = []  # (seconds since start, [rss of each server])

    async def run(self):
        sessions = [
            await asyncio.to_thread(self.servers[0].create_session, f"soak {n}")
            for n in range(self.args.sessions)
        ]
        started = time.monotonic()
        self.deadline = started + self.args.seconds
        sampler = asyncio.ensure_future(self.sample_memory(started))
        tasks = [self.publish(session) for session in sessions]
        tasks += [self.viewer_slot(session) for session in sessions for _ in range(self.args.viewers)]
        await asyncio.gather(*tasks)
        sampler.cancel()
        return await self.verdict(sessions, time.monotonic() - started)

    async def sample_memory(self, started):
        while True:
            self.samples.append(
                (round(time.monotonic() - started, 1), [rss_bytes(s.process.pid) for s in self.servers])
            )
            await asyncio.sleep(SAMPLE_SECONDS)

    async def publish(self, session):
        publisher = Publisher(random.sample(self.urls, len(self.urls)), session, timeout=30)
        self.publishers.append((session, publisher))
        number = 0
        while time.monotonic() < self.deadline:
            number += 1
            text = f"{session['id']} edit {number}"
            began = time.monotonic()
            await publisher.publish(flat_opc(f"Soak paragraph {number}.", text), text)
            await asyncio.sleep(max(0, 1 / self.args.rate - (time.monotonic() - began)))
        await publisher.disconnect()

    async def viewer_slot(self, session):
        """One place of a viewer: readers come and go, the last one stays to the end."""
        await asyncio.sleep(random.uniform(0, 5))  # a crowd arrives over a few seconds, not in one instant
        while True:
            viewer = Viewer(random.sample(self.urls, len(self.urls)), session).start()
            self.joins += 1
            stay = random.expovariate(1 / self.args.mean_stay)
            if time.monotonic() + stay >= self.deadline:
                await asyncio.sleep(max(0, self.deadline - time.monotonic()))
                self.stayed.append((session, viewer))
                return
            await asyncio.sleep(stay)
            await viewer.stop()
            self.leaves += 1
            await asyncio.sleep(random.uniform(0, 2))

    async def verdict(self, sessions, seconds):
        stored = await asyncio.to_thread(self.stored_versions, sessions)
        # Viewers may be a broadcast behind when the load stops; they get a minute to settle.
        await asyncio.gather(
            *(
                viewer.wait_for_version(stored[s["id"]]["version"], CONVERGE_SECONDS)
                for s, viewer in self.stayed
            )
        )
        behind = [
            {"session": s["id"], "viewer": viewer.version, "stored": stored[s["id"]]["version"]}
            for s, viewer in self.stayed
            if viewer.version != stored[s["id"]]["version"] or viewer.html != stored[s["id"]]["html"]
        ]
        problems = [problem for _, viewer in self.stayed for problem in viewer.problems]
        lost = []
        acknowledged = errors = 0
        latencies = []
        for session, publisher in self.publishers:
            revisions = stored[session["id"]]["revisions"]
            for outcome in publisher.outcomes:
                if outcome.version is None:
                    errors += 1
                    continue
                acknowledged += 1
                latencies.append(outcome.seconds)
                if outcome.text not in revisions.get(outcome.version, ""):
                    lost.append({"session": session["id"], "version": outcome.version})
        await asyncio.gather(*(viewer.stop() for _, viewer in self.stayed))
        memory = self.memory_figures()
        latencies.sort()
        figures = {
            "seconds": round(seconds),
            "servers": len(self.servers),
            "sessions": len(sessions),
            "viewers_per_session": self.args.viewers,
            "updates_per_second_per_session": self.args.rate,
            "viewer_joins": self.joins,
            "viewer_leaves": self.leaves,
            "viewers_at_end": len(self.stayed),
            "viewers_behind": len(behind),
            "viewer_problems": problems[:10],
            "updates_acknowledged": acknowledged,
            "updates_not_acknowledged": errors,
            "acknowledged_but_not_stored": len(lost),
            "update_latency_p50_ms": round(latencies[len(latencies) // 2] * 1000) if latencies else None,
            "update_latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000)
            if latencies
            else None,
            **memory,
        }
        figures["verdict"] = (
            "pass"
            if not behind and not lost and not problems and memory["memory_bounded"] and acknowledged
            else "fail"
        )
        if behind:
            figures["behind_examples"] = behind[:5]
        return figures

    def stored_versions(self, sessions):
        result = {}
        with psycopg.connect(self.database_url) as connection:
            for session in sessions:
                version, html = connection.execute(
                    "SELECT version, html FROM sessions_app_collabsession WHERE id = %s", [session["id"]]
                ).fetchone()
                revisions = dict(
                    connection.execute(
                        "SELECT version, html FROM sessions_app_revision WHERE session_id = %s",
                        [session["id"]],
                    ).fetchall()
                )
                result[session["id"]] = {"version": version, "html": html, "revisions": revisions}
        return result

    def memory_figures(self):
        # The first samples are start-up (imports, first conversions); the start is taken after a warm-up.
        warm = [rss for t, rss in self.samples if t >= min(30, self.args.seconds / 5)] or [
            rss for _, rss in self.samples
        ]
        figures = {"memory_bounded": True}
        for index in range(len(self.servers)):
            series = [rss[index] for rss in warm]
            start, peak, end = series[0], max(series), series[-1]
            bounded = end <= max(start * 1.5, start + 64 * MiB)
            figures[f"daphne{index + 1}_rss_mib"] = {
                "start": round(start / MiB, 1),
                "peak": round(peak / MiB, 1),
                "end": round(end / MiB, 1),
            }
            figures["memory_bounded"] = figures["memory_bounded"] and bounded
        return figures


async def soak(args):
    prefix = f"collab-soak-{secrets.token_hex(4)}"
    with Throwaway(args.postgres) as database:
        env = {
            "DATABASE_URL": database.url,
            "REDIS_URL": args.redis,
            "COLLAB_REDIS_PREFIX": prefix,
            "COLLAB_MAX_REVISIONS": "0",  # every acknowledged version must be found afterwards
            "COLLAB_LOG_LEVEL": "WARNING",
        }
        servers = [Server(env), Server(env)]
        try:
            for server in servers:
                await asyncio.to_thread(server.start)
            return await Soak(args, servers, database.url).run()
        finally:
            for server in servers:
                await asyncio.to_thread(server.stop)
            client = redis.Redis.from_url(args.redis)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            client.close()


def main(argv=None):
    args = parse_args(argv)
    figures = asyncio.run(soak(args))
    print(json.dumps(figures))
    return 0 if figures["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())

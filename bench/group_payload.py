"""Why a broadcast carries the version, not the HTML: both designs through the real Redis layer.

A process's members of a session's group are N channels of channels-redis (N=1 since the
session hub; N sockets before it). This sends one update to a group of N such channels in
two ways and measures the time until every channel has its message, and the bytes Redis
sent out (INFO stats):

- "version": the group message is `{"version": n}`; the process then reads the HTML once
  from a database (SQLite, as collab's default) and encodes one frame;
- "html": the group message carries the HTML itself, as channels' examples do.

`--layer pubsub` runs the same through channels-redis's pub/sub layer (PUBLISH to each
subscribed process) instead of its default layer (a Redis list per channel).

    .venv/bin/python bench/group_payload.py [--viewers 1000] [--kib 200] [--layer core|pubsub]
"""

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from channels_redis.core import RedisChannelLayer  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_output_bytes():
    with redis.Redis.from_url(REDIS_URL) as client:
        return client.info("stats")["total_net_output_bytes"]


async def one_broadcast(layer, channels, message, html_store):
    """Send `message` to the group; time until every channel has received it and has its frame."""
    frames = {}

    async def viewer(channel):
        received = await layer.receive(channel)
        version = received["version"]
        if "html" not in received:
            # The version-only design: one read and one encode per process, shared by all.
            if version not in frames:
                frames[version] = None
                html = html_store.execute("SELECT html FROM doc WHERE version = ?", (version,)).fetchone()[0]
                frames[version] = json.dumps({"Action": "get-html", "Content": html})
            return frames[version]
        return json.dumps({"Action": "get-html", "Content": received["html"]})

    before = redis_output_bytes()
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(viewer(channel)) for channel in channels]
    await asyncio.sleep(0)
    await layer.group_send("bench-group", message)
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, redis_output_bytes() - before


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layer", choices=["core", "pubsub"], default="core")
    args = parser.parse_args()
    prefix = f"bench-{secrets.token_hex(4)}"
    if args.layer == "pubsub":
        layer = RedisPubSubChannelLayer(hosts=[{"address": REDIS_URL}], prefix=prefix)
    else:
        layer = RedisChannelLayer(
            hosts=[{"address": REDIS_URL, "socket_timeout": 15}], prefix=prefix, capacity=100_000
        )
    channels = [await layer.new_channel() for _ in range(args.viewers)]
    for channel in channels:
        await layer.group_add("bench-group", channel)
    html = "<p>" + "x" * (args.kib * 1024) + "</p>"
    html_store = sqlite3.connect(Path(tempfile.mkdtemp()) / "documents.sqlite3")
    html_store.execute("CREATE TABLE doc (version INTEGER PRIMARY KEY, html TEXT)")
    results = {"version": [], "html": []}
    for version in range(1, args.rounds + 1):
        html_store.execute("INSERT INTO doc VALUES (?, ?)", (version, html))
        html_store.commit()
        for design, message in (
            ("version", {"type": "session.html", "version": version}),
            ("html", {"type": "session.html", "version": version, "html": html}),
        ):
            results[design].append(await one_broadcast(layer, channels, message, html_store))
    print(
        f"{args.layer} layer, {args.viewers} channels in one process, {args.kib} KiB of HTML, "
        f"{args.rounds} rounds (median):"
    )
    for design, rows in results.items():
        seconds = sorted(row[0] for row in rows)[len(rows) // 2]
        sent = sorted(row[1] for row in rows)[len(rows) // 2]
        print(
            f"  {design:8} message: {seconds * 1000:8.1f} ms until all hold it, "
            f"Redis sent {sent / 1e6:8.2f} MB"
        )
    await layer.flush()


if __name__ == "__main__":
    asyncio.run(main())

"""Where a daphne process spends its CPU during reconnect storms: py-spy on the server, top entries.

    .venv/bin/python bench/profile_storm.py                       # 1,000 viewers, Redis layer, 5 storms
    .venv/bin/python bench/profile_storm.py --viewers 5000 --storms 2
    .venv/bin/python bench/profile_storm.py --code ../before      # profile another checkout
    .venv/bin/python bench/profile_storm.py --update               # one update to one viewer instead

py-spy (requirements-dev.txt) samples the daphne process, started as a deployer starts it
(bench/fanout.py's `Daphne`), while N viewers connect at once, repeatedly; the script prints
the functions with the most samples, by own time (where the CPU is) and by total time (what
it is spent for). `--update` profiles 90 updates from a Word client to one viewer instead
(the message rate allows that many): the fixed cost of an update. The raw profile is written
as speedscope JSON for a closer look.
"""

import argparse
import asyncio
import collections
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import Daphne, Viewers, Word, html_document, raise_file_limit  # noqa: E402


def py_spy():
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    return found


async def storms(target, viewers_count, count):
    session = await asyncio.to_thread(target.create_session)
    async with Word(target.ws_urls[0], session) as word:
        version = await word.publish(html_document(20))
        for _ in range(count):
            viewers = Viewers(target.ws_urls, session, viewers_count)
            await viewers.open(batch=viewers_count)
            await viewers.all_hold(version)
            await viewers.close()
            await asyncio.sleep(1)  # the closes are handled outside the next storm's samples


async def updates(target, count):
    session = await asyncio.to_thread(target.create_session)
    viewers = Viewers(target.ws_urls, session, 1)
    async with Word(target.ws_urls[0], session) as word:
        await viewers.open()
        for update in range(count):
            version = await word.publish(html_document(5, marker=f"update {update}", edited=update % 50))
            await viewers.all_hold(version)
    await viewers.close()


def top_entries(speedscope, limit):
    """Seconds sampled, and (own, total) seconds per function over every sampled stack, the most first.

    py-spy's speedscope profiles weigh each sample by the time it stands for.
    """
    frames = speedscope["shared"]["frames"]
    own, total = collections.Counter(), collections.Counter()
    samples = 0
    for profile in speedscope["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            samples += weight
            names = [f"{frames[i]['name']} ({Path(frames[i].get('file', '?')).name})" for i in stack]
            if names:
                own[names[-1]] += weight
            for name in set(names):
                total[name] += weight
    return samples, own.most_common(limit), total.most_common(limit)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--storms", type=int, default=5)
    parser.add_argument("--update", action="store_true", help="profile updates to one viewer instead")
    parser.add_argument("--layer", choices=["redis", "memory"], default="redis")
    parser.add_argument("--code", type=Path, default=ROOT, help="serve collab from this checkout")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    raise_file_limit()
    target = Daphne("profiled", redis=args.layer == "redis", code=args.code.resolve())
    output = Path(tempfile.mkdtemp(prefix="profile-")) / "profile.speedscope.json"
    recorder = subprocess.Popen(
        [py_spy(), "record", "--pid", str(target.pids[0]), "--rate", "1000", "--format", "speedscope"]
        + ["--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(updates(target, 90) if args.update else storms(target, args.viewers, args.storms))
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
        target.stop()
    samples, own, total = top_entries(json.loads(output.read_text()), args.top)
    what = "90 updates to one viewer" if args.update else f"{args.storms} storms of {args.viewers} viewers"
    print(
        f"collab from {args.code.resolve()}, {args.layer} layer, {what}: {samples:.2f} s sampled ({output})"
    )
    for title, entries in (("own time", own), ("total time", total)):
        print(f"\nTop by {title}:")
        for name, count in entries:
            print(f"  {count / samples * 100:5.1f}%  {name}")


if __name__ == "__main__":
    main()

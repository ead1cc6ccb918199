"""What storing one version costs the database thread: `services.store_document`, alone, in this process.

    .venv/bin/python bench/store.py                                              # SQLite
    .venv/bin/python bench/store.py --postgres postgres://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/store.py --postgres URL --compression lz4,pglz        # both, interleaved

The document is bench/fanout.py's fixed-cost update (5 pages, 28.8 KB of HTML), a new
version each time. On PostgreSQL a new database is made on that server, migrated, and
dropped at the end; `--compression` sets the HTML columns to each method in turn, round
after round, so that the methods are compared in one sitting (migration 0004 sets lz4).
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# In place of this folder: its incremental.py would hide the package Twisted imports.
sys.path[0] = str(ROOT)

from bench.fanout import html_document, psql  # noqa: E402

HTML_COLUMNS = (("sessions_app_collabsession", "html"), ("sessions_app_revision", "html"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (postgres://user@host/db)")
    parser.add_argument("--compression", default="", help="PostgreSQL: methods to compare, e.g. lz4,pglz")
    parser.add_argument("--stores", type=int, default=300, help="stores per method and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dropped = None
    if args.postgres:
        database = f"bench_store_{secrets.token_hex(4)}"
        psql(args.postgres, f"CREATE DATABASE {database}")
        dropped = (args.postgres, database)
        os.environ["DATABASE_URL"] = f"{args.postgres.rpartition('/')[0]}/{database}"
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-store-')}/db.sqlite3"
    os.environ.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), REDIS_URL="")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collab.settings")
    try:
        run(args)
    finally:
        if dropped is not None:
            from django.db import connections

            connections.close_all()
            psql(dropped[0], f"DROP DATABASE IF EXISTS {dropped[1]} WITH (FORCE)")


def run(args):
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from conversion.pool import _sanitise_here
    from sessions_app.publishing import conversion_limits
    from sessions_app.services import do_create_session, store_document

    call_command("migrate", verbosity=0)
    session, _, _ = do_create_session("bench")
    limits = conversion_limits()
    pages = [html_document(5, marker=f"update {n}", edited=n % 50) for n in range(50)]
    documents = [_sanitise_here(html, limits) for html in pages]
    methods = [m for m in args.compression.split(",") if m] or ["as migrated"]
    timings = {method: [] for method in methods}
    for _ in range(args.rounds):
        for method in methods:
            if method != "as migrated":
                with connection.cursor() as cursor:
                    for table, column in HTML_COLUMNS:
                        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")
            for n in range(args.stores):
                started = time.perf_counter()
                store_document(session.id, documents[n % len(documents)])
                timings[method].append(time.perf_counter() - started)
    print(f"{connection.vendor}, {len(documents[0].html)} characters of HTML per version:")
    for method, values in timings.items():
        print(f"  {method}: store_document p50 {statistics.median(values) * 1000:.2f} ms over {len(values)}")


if __name__ == "__main__":
    main()

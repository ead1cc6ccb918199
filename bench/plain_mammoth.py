"""Plain mammoth, timed in a process that never imports collab's conversion package.

    .venv/bin/python -m bench.plain_mammoth      (bench/incremental.py starts it)

Importing conversion/ installs a faster XML parser and style matching into mammoth, so
mammoth timed in a process that did is not plain. Each line on stdin names a .docx file;
the answer on stdout is the seconds one ``mammoth.convert_to_html`` of it took, with
mammoth's default options, the file's bytes read beforehand.
"""

import io
import sys
import time
from pathlib import Path

import mammoth


def main():
    documents: dict[str, bytes] = {}
    for line in sys.stdin:
        if "conversion" in sys.modules:
            raise RuntimeError("collab's conversion package was imported: mammoth is not plain here")
        path = line.strip()
        if path not in documents:
            documents[path] = Path(path).read_bytes()
        started = time.perf_counter()
        mammoth.convert_to_html(io.BytesIO(documents[path]))
        print(time.perf_counter() - started, flush=True)


if __name__ == "__main__":
    main()

"""Print what `make run` gives you, from create_session --json on stdin: `demo_banner.py VENV`."""

import json
import shlex
import sys

# The demo session opens on samples/welcome.docx; publishing the other sample shows a new version.
SAMPLE = "samples/report.docx"

details = json.load(sys.stdin)
python = f"{sys.argv[1]}/bin/python"
base = details["viewer_url"].split("/s/", 1)[0]
publish = " ".join(
    [
        f"DJANGO_DEBUG=1 COLLAB_TOKEN={shlex.quote(details['word_token'])}",
        f"{python} manage.py publish {shlex.quote(details['id'])} {SAMPLE}",
        f"--url {details['ws_url']} --watch",
    ]
)
rows = [
    ("Open the viewer", details["viewer_url"]),
    ("Publish a sample", publish),
    ("", f"(or your own file in place of {SAMPLE})"),
    ("Admin", f"{base}/admin/  (make a login: DJANGO_DEBUG=1 {python} manage.py createsuperuser)"),
    ("API docs", f"{base}/api/docs/"),
]
width = max(len(label) for label, _ in rows)
print()
print(f"collab is serving {details['title']!r} ({details['id']}) at {base}")
for label, value in rows:
    print(f"  {label:<{width}}  {value}")
print("  (new tokens on every run: they are stored hashed, so earlier ones cannot be shown again)")
print()

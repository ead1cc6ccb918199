#!/bin/sh
# `make run`: migrate, reuse the demo session, print how to use it, serve on HOST:PORT.
# Usage: HOST=… PORT=… scripts/run_demo.sh VENV
set -eu
venv=$1
py=$venv/bin/python

# Links must name an address other machines can open: not 0.0.0.0 or ::.
case $HOST in
    0.0.0.0 | :: | '') public_host=$("$py" scripts/machine_address.py) ;;
    *:*) public_host="[$HOST]" ;;
    *) public_host=$HOST ;;
esac
# settings.py allows COLLAB_PUBLIC_URL's host, so pages opened by that name get no HTTP 400.
export COLLAB_PUBLIC_URL="${COLLAB_PUBLIC_URL:-http://$public_host:$PORT}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"

"$py" manage.py migrate --noinput -v 0
"$py" manage.py create_session --title "Demo session" --reuse --publish samples/welcome.docx --json | "$py" scripts/demo_banner.py "$venv"
exec "$venv/bin/daphne" -b "$HOST" -p "$PORT" collab.asgi:application

#!/bin/sh
# Build the virtualenv for `make install`: refuse an old Python before touching anything,
# keep pip quiet unless it fails, and leave no half-built virtualenv behind.
# Usage: scripts/install.sh PYTHON VENV
set -u
python=$1
venv=$2

version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
case $version in
    3.1[1-9] | 3.[2-9][0-9] | [4-9].*) ;;
    *)
        echo "collab needs Python 3.11 or newer; found ${version:-no Python} at ${python:-no python3 on PATH}; set PYTHON=/path/to/python3.11" >&2
        exit 1
        ;;
esac

# Without the marker, a virtualenv is what a failed run left: it is built again, not reused.
# With it (the requirements changed), it is updated in place.
fresh=no
if [ ! -e "$venv/installed" ]; then
    rm -rf "$venv"
    fresh=yes
fi
rm -f "$venv/installed"
log=$(mktemp)
if "$python" -m venv "$venv" >"$log" 2>&1 &&
    "$venv/bin/python" -m pip install -q --upgrade pip >>"$log" 2>&1 &&
    "$venv/bin/python" -m pip install -q -r requirements-dev.txt >>"$log" 2>&1; then
    rm -f "$log"
    touch "$venv/installed" # last: only a complete virtualenv has it
else
    cat "$log" >&2
    rm -f "$log"
    if [ $fresh = yes ]; then rm -rf "$venv"; fi
    echo "Installing into $venv failed (pip's output above); make install tries again from scratch." >&2
    exit 1
fi

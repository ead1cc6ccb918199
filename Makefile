# The README's commands. `make run` serves a demo; `make test` runs everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install browser clean

$(VENV)/installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/installed

run: export COLLAB_PUBLIC_URL ?= http://$(HOST):$(PORT)
run: export DJANGO_DEBUG ?= 1
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py create_session --title "Demo session"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) collab.asgi:application

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser tests drive Debian's Chromium, and TinyMCE 5 for the field's editor plugin;
# each installed only when it is missing.
browser:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	@test -f .browser-packages/node_modules/tinymce/tinymce.min.js || npm install --prefix .browser-packages --no-save tinymce@5

test: install browser lint
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .browser-packages db.sqlite3 staticfiles .pytest_cache .ruff_cache

# The README's commands. `make run` serves a demo (on HOST:PORT); `make test` runs everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install browser clean

# scripts/install.sh refuses a Python older than 3.11 and leaves no half-built virtualenv.
$(VENV)/installed: requirements.txt requirements-dev.txt
	@scripts/install.sh "$(PYTHON)" $(VENV)

install: $(VENV)/installed

# HOST=0.0.0.0 serves other machines; the printed links then carry this machine's address.
run: install
	@HOST=$(HOST) PORT=$(PORT) scripts/run_demo.sh $(VENV)

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

# Without PYTEST_ARGS, everything: first, on every core at once, the tests that share nothing
# but the CPU (conversion, HTML, parsing) and two long ones that time nothing (the API's schema
# fuzzing, `make run` in a fresh clone); then the others, with their servers, databases and
# browsers, one after another.
PARALLEL_TESTS := tests/test_conversion_*.py tests/test_html_docx.py tests/test_html_patch.py \
	tests/test_word_markup.py tests/test_frame_parsing.py tests/test_fidelity_measure.py tests/test_samples.py \
	tests/test_api_schema.py tests/test_make_run_fresh_clone.py

test: install browser lint
ifeq ($(strip $(PYTEST_ARGS)),)
	$(PY) -m pytest -n auto $(PARALLEL_TESTS)
	$(PY) -m pytest $(foreach tests,$(PARALLEL_TESTS),'--ignore-glob=$(tests)')
else
	$(PY) -m pytest $(PYTEST_ARGS)
endif

clean:
	rm -rf $(VENV) .browser-packages db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles .pytest_cache .ruff_cache

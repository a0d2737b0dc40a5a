# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK)

.PHONY: run test lint bench lock clean stack chromium screenshots check-gcloud

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# The embedded default runs the web app and the training worker, so it needs both.
$(VENV)/.installed-run: $(BIN)/python $(LOCK) requirements/shared.in requirements/webapp.in requirements/functions.in
	$(PIP) -r requirements/webapp.in -r requirements/functions.in
	touch $@

$(VENV)/.installed-test: $(BIN)/python $(LOCK) $(wildcard requirements/*.in)
	$(PIP) -r requirements/dev.in
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/python -m webapp

# Browser tests drive Debian's chromium (never a browser downloaded by Playwright).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "Browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

# One pytest worker per core (each fitting with one OpenMP thread, see tests/conftest.py), whole
# test files to a worker so their module fixtures (a trained model, a web app) are made once.
# Tests whose timing is the point (marker solo) run after them, alone on the machine.
PYTEST_ARGS ?= -n auto --maxprocesses 4 --dist loadfile
test: $(VENV)/.installed-test chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest --durations=15 -m "not solo" $(PYTEST_ARGS)
	$(BIN)/pytest --durations=5 -m solo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed-test
	for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Re-resolve every pin after editing a requirements/*.in file.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet -r requirements/dev.in
	$(VENV)-lock/bin/python requirements/lock.py > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(VENV)-lock

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# The local cloud: storage emulator + train and predict functions + web app (see README).
STACK_ARGS ?=
stack: $(VENV)/.installed-test
	$(BIN)/python functions/local_stack.py $(STACK_ARGS)

# docs/01-dataset.png ... docs/06-predict.png, driven through the real wizard in Chromium.
screenshots: $(VENV)/.installed-test chromium
	$(BIN)/python docs/screenshots.py

# Every gcloud command and flag in cloudbuild.yaml and docs/deploy.md, against the installed
# Google Cloud SDK's reference (needs gcloud; no account or network).
check-gcloud: $(VENV)/.installed-test
	$(BIN)/python docs/check_gcloud.py

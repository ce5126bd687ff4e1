# The index of commands. `make run` and `make test` install into .venv when needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# One stamp per requirements file: editing either file (or this one) reinstalls on the next run.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install run test test-fast bench loadtest lint format screenshots deploy-check clean-venv

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# What the app needs (what a host installs).
$(RUN_STAMP): requirements.txt Makefile | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The app's requirements plus tests, lint, types and the browser driver.
$(DEV_STAMP): requirements-dev.txt requirements-ray.txt requirements.txt Makefile | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(RUN_STAMP)

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(PY) -m ui.launch

test: $(DEV_STAMP)
	$(PY) -m pytest

test-fast: $(DEV_STAMP)
	$(PY) -m pytest -m "not slow and not browser"

bench: $(DEV_STAMP)
	$(PY) -m tests.harness.bench

# N visitors at once against `streamlit run app.py` (public mode): times, memory, no cross-talk.
# LOADTEST="--sessions 20 --idle-wait 10" picks other cases (python -m tests.harness.loadtest --help).
LOADTEST ?= --sessions 1,5,10,20 --heavy
loadtest: $(DEV_STAMP)
	$(PY) -m tests.harness.loadtest $(LOADTEST)

lint: $(DEV_STAMP)
	$(PY) -m ruff check core ui tests pages app.py
	$(PY) -m ruff format --check core ui tests pages app.py
	$(PY) -m mypy

format: $(DEV_STAMP)
	$(PY) -m ruff format core ui tests pages app.py
	$(PY) -m ruff check --fix core ui tests pages app.py

# Retake docs/screenshots/*.png in headless Chromium (needs chromium and chromium-driver).
screenshots: $(DEV_STAMP)
	$(PY) -m tests.harness.screenshots

# What a host does: a fresh venv in a temporary folder, `pip install -r requirements.txt` only,
# `streamlit run app.py` in public mode; then headless Chromium uses it (see tests/harness/deploy_check.py).
deploy-check: $(DEV_STAMP)
	$(PY) -m tests.harness.deploy_check --python $(PYTHON)

clean-venv:
	rm -rf $(VENV)

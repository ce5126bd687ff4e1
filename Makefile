# The index of commands. `make run` and `make test` install into .venv when needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench loadtest lint format screenshots clean-venv

$(STAMP): requirements.txt Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# facenet-pytorch pins torch<2.3 and numpy<2 in its metadata but works with these versions.
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m ui.launch

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser"

bench: $(STAMP)
	$(PY) -m core bench

# N visitors at once against `streamlit run app.py` (public mode): times, memory, no cross-talk.
# LOADTEST="--sessions 20 --idle-wait 10" picks other cases (python -m tests.loadtest --help).
LOADTEST ?= --sessions 1,5,10,20 --heavy
loadtest: $(STAMP)
	$(PY) -m tests.loadtest $(LOADTEST)

lint: $(STAMP)
	$(PY) -m ruff check core ui tests pages app.py
	$(PY) -m ruff format --check core ui tests pages app.py

format: $(STAMP)
	$(PY) -m ruff format core ui tests pages app.py
	$(PY) -m ruff check --fix core ui tests pages app.py

# Retake docs/screenshots/*.png in headless Chromium (needs chromium and chromium-driver).
screenshots: $(STAMP)
	$(PY) -m tests.screenshots

clean-venv:
	rm -rf $(VENV)

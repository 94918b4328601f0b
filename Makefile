# The README's commands. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO_HOME ?= .grace-demo

.PHONY: setup demo dev test test-fast ui-check lint bench fixtures clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: setup
	GRACE_HOME=$(DEMO_HOME) PATH=$(CURDIR)/$(BIN):$$PATH bash scripts/demo.sh

dev: setup
	$(BIN)/grace dev

test: setup
	$(BIN)/pytest -q

# the inner loop: everything but the kill -9 loops, load tests and the eval floor (see the slow marker)
test-fast: setup
	$(BIN)/pytest -q -m "not slow"

# the control room in a real browser: `grace dev` on a temporary GRACE_HOME, headless Chromium
# (Debian's /usr/bin/chromium, via Playwright); screenshots of each layer land in docs/screenshots/
ui-check: setup
	GRACE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/ui

# style and import order (ruff, configured in pyproject.toml); .ci/run runs it before the tests
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/run_all.py

# Regenerate the speech fixtures (needs espeak-ng, sox and ffmpeg from Debian's packages).
fixtures:
	$(BIN)/python tests/fixtures/make_fixtures.py --verify

clean:
	rm -rf $(DEMO_HOME) .pytest_cache

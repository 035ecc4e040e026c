# The two commands a new user needs: `make run` and `make test`. Both create .venv and install when needed.
# The repository's own folder, so that `make -f <clone>/Makefile run` works from a site folder holding cxr.toml.
ROOT := $(dir $(realpath $(lastword $(MAKEFILE_LIST))))
# The first of Python 3.11 to 3.13 that runs here (3.11 first: the pinned torch's wheels for it may be on local disk).
PYTHON ?= $(firstword $(foreach p,python3.11 python3.12 python3.13,$(shell $(p) -c 'import venv' >/dev/null 2>&1 && echo $(p))))
VENV ?= $(ROOT).venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# OHIF's SR and SEG reading code for the viewer tests, pinned by the lockfile; installed where npm is present (the
# tests fail under CI without it, and skip elsewhere).
OHIF := tests/viewers/ohif
OHIF_STAMP := $(OHIF)/node_modules/.installed-stamp

.PHONY: install viewers run test lint format typecheck clean

$(STAMP): $(ROOT)pyproject.toml
	@test -x $(BIN)/python || test -n "$(PYTHON)" || { echo "make: Python 3.11, 3.12 or 3.13 is needed (or PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The full install: the deep extra (torch and torchvision, pinned) and the test tools. pip shows what it fetches;
	# it takes the pinned torch from the local wheel cache where present. The light install is `pip install -e .`.
	$(BIN)/python -m pip install --progress-bar on -e '$(ROOT).[dev]'
	touch $(STAMP)

install: $(STAMP)

$(OHIF_STAMP): $(OHIF)/package-lock.json
	cd $(OHIF) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(OHIF_STAMP)

viewers:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(OHIF_STAMP); \
	else echo "npm not found: the OHIF viewer tests will be skipped (under CI they fail)"; fi

# exec: the shell make starts becomes `cxr serve`, so a SIGTERM that make forwards to its child reaches the node.
run: install
	exec $(BIN)/cxr serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/codespell

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

# The suite spends about half its time waiting on peers and on the node's own processes, so two pytest workers keep two
# cores busy (bench/RESULTS.md, "The test suite"). A file's tests run in one worker, in order: the tests of a file
# share their Redis database (tests/helpers/databases.py). TEST_WORKERS=0 runs the suite in one process. The slowest
# tests are listed at the end: the suite is to stay within about 25 minutes on the CI machine kind.
TEST_WORKERS ?= 2

test: install viewers lint typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=30

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache $(OHIF)/node_modules

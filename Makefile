# The two commands a new user needs: `make run` and `make test`. Both create .venv and install when needed.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# OHIF's SR and SEG reading code for the viewer tests, pinned by the lockfile; installed where npm is present (the
# tests fail under CI without it, and skip elsewhere).
OHIF := tests/viewers/ohif
OHIF_STAMP := $(OHIF)/node_modules/.installed-stamp

.PHONY: install viewers run test lint format typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch and torchvision are pinned in pyproject.toml; pip takes them from the local wheel cache where present.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(OHIF_STAMP): $(OHIF)/package-lock.json
	cd $(OHIF) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(OHIF_STAMP)

viewers:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(OHIF_STAMP); \
	else echo "npm not found: the OHIF viewer tests will be skipped (under CI they fail)"; fi

run: install
	$(BIN)/cxr serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/codespell

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

test: install viewers lint typecheck
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache $(OHIF)/node_modules

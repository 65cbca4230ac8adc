# roost — `make demo` and `make test` work on a fresh machine with only Python 3.11+.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.roost-installed
# System packages the tests use (real servers and a real browser); installed with apt-get when missing.
SYSPKGS := redis-server:redis-server postgresql:/usr/lib/postgresql chromium:chromium wrk:wrk nghttp2-client:h2load openjdk-17-jre-headless:java

.PHONY: demo test test-fast lint format bench venv sysdeps clean screenshots

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU build of PyTorch from the local wheel first, so nothing pulls a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

sysdeps:
	@missing=""; for spec in $(SYSPKGS); do pkg=$${spec%%:*}; probe=$${spec#*:}; \
	  if ! command -v $$probe >/dev/null 2>&1 && ! test -e $$probe; then missing="$$missing $$pkg"; fi; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: apt-get could not install$$missing; tests that need them will say so"; \
	  else echo "warning: missing$$missing and no root apt-get; tests that need them will say so"; fi; \
	fi

# Style, types and layering, checked by tools (as Starlette's scripts/check): CI runs this before the tests.
LINT_PATHS := src tests bench examples docs
lint: $(STAMP)
	$(VENV)/bin/ruff format --no-cache --check $(LINT_PATHS)
	$(VENV)/bin/ruff check --no-cache $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

demo: $(STAMP)
	$(PY) examples/demo.py

# docs/img/ui-*.png: every UI page on a fresh demo workspace, in Chromium (docs/ui.md shows them)
screenshots: $(STAMP) sysdeps
	$(PY) docs/img/make_screenshots.py

# The whole suite, slow/services/browser tests included (CI runs exactly this), in TEST_WORKERS pytest-xdist
# worker processes; --dist loadfile keeps each test file on one worker, so a module's server or Spark session
# starts once, and tests/conftest.py hands out the files with slow tests first (--no-loadscope-reorder keeps
# that order). 3 workers on CI's 2 cores, as many tests wait on servers and subprocesses (measured, loaded:
# -n 2 2004 s at load 5-10 before that order, -n 3 1705 s at load 5-9; serial 28 min on a quiet machine).
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 3
test: $(STAMP) sysdeps
	$(VENV)/bin/pytest -q -m "" -p no:cacheprovider --durations=40 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow and not services and not browser" -p no:cacheprovider

# Benchmarks: each peer in its own venv under .bench/ (they conflict with each other).
bench: $(STAMP) sysdeps
	@for f in bench/startup.py bench/registry.py bench/quality.py bench/features.py bench/serving.py bench/ui.py \
	          bench/tuning.py bench/ann.py bench/monitor.py bench/scale.py bench/server.py; do \
	  if [ -f $$f ]; then echo "== $$f"; $(PY) $$f || exit 1; fi; done

clean:
	rm -rf $(VENV) .bench demo-workspace

# One command per loop: `make demo`, `make test`, `make test-fast`, `make lint`, `make bench`,
# `make reliability`.
# Every target installs with requirements/constraints.txt, so versions match CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := requirements/constraints.txt
PIP := $(BIN)/python -m pip install --quiet -c $(CONSTRAINTS)
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-fast lint bench docs check-install constraints clean system-packages \
	clients reliability

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Pango for PDF invoices and pdftotext for their tests: apt-get, only when missing and root.
system-packages:
	.ci/system-packages

CLIENTS := tests/clients
CLIENTS_LEGACY := requirements/clients-legacy.txt
CLIENTS_LEGACY_OPENLLMETRY := requirements/clients-legacy-openllmetry.txt
VERCEL_LOCK := $(CLIENTS)/vercel/package-lock.json

# Tests, checkers and everything they import (the server, charts and pdf extras included),
# and the client agents of tests/test_clients.py.
$(STAMP): pyproject.toml $(CONSTRAINTS) $(CLIENTS_LEGACY) $(CLIENTS_LEGACY_OPENLLMETRY) \
          $(VERCEL_LOCK) | $(BIN)/python
	.ci/system-packages
	$(PIP) -e '.[test,dev]'
	$(MAKE) clients
	touch $(STAMP)

# Client releases that cannot share the venv go to a folder of their own (their pins would
# contradict the constraints, hence no -c), or to a venv of their own when they need an
# older OpenTelemetry; the Vercel AI SDK agent's Node packages come from its lock, where npm
# is installed (its test skips, saying so, where node is not).
clients: | $(BIN)/python
	rm -rf $(CLIENTS)/.legacy
	$(BIN)/python -m pip install --quiet --no-deps --target $(CLIENTS)/.legacy -r $(CLIENTS_LEGACY)
	rm -rf $(CLIENTS)/.legacy-openllmetry
	$(PYTHON) -m venv $(CLIENTS)/.legacy-openllmetry
	$(CLIENTS)/.legacy-openllmetry/bin/python -m pip install --quiet --no-deps \
	  -r $(CLIENTS_LEGACY_OPENLLMETRY)
	if command -v npm >/dev/null; then \
	  npm ci --prefix $(CLIENTS)/vercel --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Vercel AI SDK client test will skip" >&2; fi

# The demo writes charts: the core install and the charts extra.
$(DEMO_STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) -e '.[charts]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	rm -f demo.db demo.db-wal demo.db-shm demo-*.png
	$(BIN)/payoff --db demo.db demo

# pytest exits 5 when it collected no tests: that is a failure, said plainly.
test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=30; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; fi; \
	exit $$status

# The edit loop: everything but the tests that start processes or a live server.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test-fast: no tests were collected" >&2; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --cache-dir .mypy_cache

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The long form of the reliability checks (docs/RELIABILITY.md): many kills, many examples,
# wrong results counted instead of stopping at the first. Each size is an environment
# variable (SIZES in tests/reliability.py: PAYOFF_CRASH_SERVE_KILLS=100 make reliability);
# the figures go to docs/reliability-results.md, a table to quote. `make test` runs the
# bounded form of the same checks.
RELIABILITY_TESTS := tests/test_crash.py tests/test_fuzz_records.py tests/test_hostile_bodies.py \
	tests/test_hostile_load.py tests/test_schemathesis.py
RELIABILITY_RAW := .reliability-results.jsonl
reliability: $(STAMP)
	rm -f $(RELIABILITY_RAW)
	PAYOFF_RELIABILITY=long PAYOFF_RELIABILITY_RESULTS=$(RELIABILITY_RAW) \
		$(BIN)/python -m pytest -q -rxXs $(RELIABILITY_TESTS); status=$$?; \
	$(BIN)/python tests/reliability.py $(RELIABILITY_RAW) > docs/reliability-results.md; \
	cat docs/reliability-results.md; exit $$status

docs: $(STAMP)
	PAYOFF_WRITE_DOCS=1 $(BIN)/python -m pytest -q tests/test_docs.py

# A fresh venv per run: `pip install .` without extras, then with the server extra.
check-install:
	PYTHON=$(PYTHON) .ci/check-install

# Rewrite the lock from what the ranges in pyproject.toml resolve to today (a fresh venv);
# then run `make lint test` and commit requirements/constraints.txt.
constraints:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet '.[test,dev]'
	{ grep '^#' $(CONSTRAINTS); .venv-lock/bin/python -m pip freeze --exclude-editable \
	  | grep -v '^payoff=='; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .venv-lock demo.db demo.db-wal demo.db-shm demo-*.png
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build src/*.egg-info bench/.work
	rm -rf $(CLIENTS)/.legacy $(CLIENTS)/.legacy-openllmetry $(CLIENTS)/vercel/node_modules
	rm -f .reliability-results.jsonl
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

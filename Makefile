# One command per loop: `make demo`, `make test`, `make lint`, `make bench`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	rm -f demo.db demo.db-wal demo.db-shm demo-*.png
	$(BIN)/payoff --db demo.db demo

# pytest exits 5 when it collected no tests: that is a failure, said plainly.
test: $(STAMP)
	$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; fi; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	cd src && ../$(BIN)/mypy --strict --cache-dir ../.mypy_cache -p payoff.core

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm

docs: $(STAMP)
	PAYOFF_WRITE_DOCS=1 $(BIN)/python -m pytest -q tests/test_docs.py

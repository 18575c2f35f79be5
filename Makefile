# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint bench bench-load bench-reliability mutation clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/coach demo

serve: $(STAMP)
	$(BIN)/coach serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q
	$(BIN)/coach eval --check

bench: $(STAMP)
	$(BIN)/python bench/turns.py

bench-load: $(STAMP)
	$(BIN)/python bench/load.py

# Reliability under faults and load (fault matrix, secret sweep, rate limits, fairness).
bench-reliability: $(STAMP)
	$(BIN)/python bench/reliability.py

# Mutation testing of the safety-critical modules, one module at a time (CPU-heavy: not
# part of `make test`). MODULES="tools/gates.py" runs one.
mutation: $(STAMP)
	$(BIN)/python bench/mutation.py $(MODULES)

clean:
	rm -rf $(VENV)

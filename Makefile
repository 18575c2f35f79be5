# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

INTEROP := .venv-interop
INTEROP_STAMP := $(INTEROP)/.installed
PHOENIX := .venv-phoenix
PHOENIX_STAMP := $(PHOENIX)/.installed

.PHONY: demo serve test lint interop bench bench-load clean

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

# The LangGraph dev server cannot share .venv (see constraints-devserver.txt): its own venv,
# with the project installed, for tests/test_devserver.py and for `langgraph dev` by hand.
$(INTEROP_STAMP): pyproject.toml constraints-devserver.txt
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/python -m pip install -q --disable-pip-version-check \
		-c constraints-devserver.txt -e '.[devserver]'
	touch $(INTEROP_STAMP)

# Arize Phoenix (about 850 MB, ~5 min to install): only for `make interop`, not `make test`.
$(PHOENIX_STAMP): constraints-phoenix.txt
	$(PYTHON) -m venv $(PHOENIX)
	$(PHOENIX)/bin/python -m pip install -q --disable-pip-version-check \
		-c constraints-phoenix.txt arize-phoenix
	touch $(PHOENIX_STAMP)

# The coach against the real tools its users run: `langgraph dev` and Arize Phoenix.
interop: $(STAMP) $(INTEROP_STAMP) $(PHOENIX_STAMP)
	$(BIN)/pytest -q tests/test_devserver.py tests/test_phoenix.py

test: lint $(INTEROP_STAMP)
	$(BIN)/pytest -q
	$(BIN)/coach eval --check

bench: $(STAMP)
	$(BIN)/python bench/turns.py

bench-load: $(STAMP)
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) $(INTEROP) $(PHOENIX)

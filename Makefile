# One tooling story: every task runs inside .venv, created by `make install`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install index serve test test-fast lint typecheck eval eval-beir bench clean

# torch first, pinned to the CPU wheel available offline (see DEVELOPERS.md); then the project.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(BIN)/tanya index

var/index/manifest.json: | install
	$(BIN)/tanya index

serve: install var/index/manifest.json
	$(BIN)/tanya serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check indexer service eval tests
	$(BIN)/mypy

eval: install
	$(BIN)/tanya eval

clean:
	rm -rf var eval/out .pytest_cache .mypy_cache .ruff_cache

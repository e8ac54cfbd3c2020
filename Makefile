# The two README commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DAYS   ?= 3
START  ?= 2026-11-18

.PHONY: setup demo test test-fast lint format clean

setup: $(VENV)/.installed

# constraints.txt pins every package to the versions the tests passed with.
$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "[setup] creating $(VENV) and installing (first run: several minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	@touch $@

demo: setup
	$(BIN)/sie demo --start $(START) --days $(DAYS) --output demo_output

# formatting, lint rules and the layer contract (docs/ARCHITECTURE.md)
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf demo_output .pytest_cache

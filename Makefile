# The two commands in the README: `make run` and `make test`. Both set up .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# With a token (environment or .env) the real bot; without one the offline playground.
run: $(BIN)/.installed
	@if [ -n "$$BOT_TOKEN" ] || grep -qs '^BOT_TOKEN=.' .env; then \
		$(BIN)/ayerpoth run; \
	else \
		echo "No BOT_TOKEN set: starting the offline playground (see README to run for real)."; \
		$(BIN)/ayerpoth playground; \
	fi

test: $(BIN)/.installed
	$(BIN)/pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/ayerpoth content check

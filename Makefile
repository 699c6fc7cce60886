# `make run` and `make test` are all a new user needs; both install into .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e tests/plugins/tropa_slack_step
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tropa dev

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check tropa tests benchmarks
	$(BIN)/mypy tropa

clean:
	rm -rf $(VENV) .tropa-data

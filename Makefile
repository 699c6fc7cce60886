# `make run` and `make test` are all a new user needs; both install into .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_PLUGIN := $(VENV)/.test-plugin

.PHONY: run test install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The test-only step plugin (tests/test_plugins.py) goes in for `make test` alone: a
# marketer's `make run` must not offer a `slack` step that only the tests ship.
$(TEST_PLUGIN): $(STAMP)
	$(BIN)/pip install --quiet -e tests/plugins/tropa_slack_step
	touch $(TEST_PLUGIN)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tropa dev

# Three test processes, one test module each at a time (module-scoped Temporal servers stay
# whole): the suite mostly waits on servers, so this halves its time on two cores.
# `make test PYTEST_ARGS="-n 0 tests/test_x.py"` runs in one process.
test: $(TEST_PLUGIN)
	$(BIN)/python -m pytest -n 3 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check tropa tests benchmarks
	$(BIN)/mypy tropa

clean:
	rm -rf $(VENV) .tropa-data

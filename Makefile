# datastage: `make demo` runs the quick start, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/datastage demo demo
	cd demo && ../$(BIN)/datastage refresh staging --rules rules/pii.yaml
	@echo
	@echo 'datastage is in $(BIN)/: put it on PATH for the commands of README.md (Usage), then cd demo:'
	@echo '  . $(BIN)/activate    # or: export PATH="$(CURDIR)/$(BIN):$$PATH"'

lint: $(VENV)/.installed-test
	$(BIN)/ruff check datastage tests benchmarks
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache .hypothesis

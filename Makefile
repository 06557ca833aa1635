# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUNDLER := $(VENV)/bin/bundler
DEMO := .demo
EXAMPLE := examples/lantern-keeper/story.yaml
EXAMPLE_ID := 7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11

.PHONY: demo test lint bench install-dev install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	@mkdir -p $(DEMO)/assets
	$(BUNDLER) db init
	$(BUNDLER) db seed $(EXAMPLE) --assets-root $(DEMO)/assets --if-missing
	$(BUNDLER) stories
	$(BUNDLER) assemble $(EXAMPLE_ID) --assets-root $(DEMO)/assets --out $(DEMO)/bundles --overwrite
	@echo "Open the player: $(abspath $(DEMO))/bundles/$(EXAMPLE_ID)/index.html"

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check bundler tests bench
	$(VENV)/bin/ruff format --check bundler tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(DEMO) bundles

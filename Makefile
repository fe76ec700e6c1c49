# Two commands do all the set-up on a fresh machine with nothing but Python:
#   make demo   creates .venv if missing, installs IncidentLens, runs the demo investigation
#   make test   the same bootstrap plus the dev extras and system packages, then the whole test suite
#               (on up to two cores at once, one test file a worker, so a file's fixtures are made once)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HAYSTACK_TELEMETRY_ENABLED := false
# An editable install compiles nothing, and a Python run with PYTHONDONTWRITEBYTECODE (as some CI images and
# containers set it) caches nothing: every CLI run would compile the package again (~0.25 s). Compiled once here;
# Python still checks each cached file against its source.
COMPILE = $(BIN)/python -m compileall -q src

.PHONY: demo test lint bench system-deps clean

$(BIN)/python:
	@echo "==> creating $(VENV) (step 1 of 3)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar on --upgrade pip

# pip's own lines ("Collecting ...", "Installing ...") are the progress of the longest step
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	@echo "==> installing IncidentLens and its dependencies into $(VENV) (step 2 of 3, about a minute)"
	$(BIN)/python -m pip install --progress-bar on -c constraints.txt -e .
	$(COMPILE)
	@echo "==> step 3 of 3: the demo"
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	$(COMPILE)
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/incidentlens demo

system-deps:
	bash scripts/install-system-deps.sh

test: $(VENV)/.installed-dev system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --numprocesses auto --maxprocesses 2 --dist loadfile

bench: $(VENV)/.installed-dev
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) incidentlens-demo .pytest_cache .ruff_cache

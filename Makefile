# `make test` installs everything into .venv and runs the checks; CI runs exactly this.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel (pinned: a newer or unpinned torch pulls several GB of CUDA packages).
# On a GPU machine: make TORCH=torch install
TORCH ?= torch==2.13.0

.PHONY: install test lint bench clean

$(BIN)/stylereel: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/stylereel

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest; status=$$?; [ $$status -eq 5 ] && echo "no tests collected" && exit 1; exit $$status

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# `make test` installs everything into .venv and runs the checks; CI runs exactly this.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel (pinned: a newer or unpinned torch pulls several GB of CUDA packages).
# On a GPU machine: make TORCH=torch install
TORCH ?= torch==2.13.0

.PHONY: install browser test lint bench clean

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
	$(BIN)/lint-imports

# The live page's tests drive Debian's Chromium through Playwright, which downloads no browser of its own.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo "sudo -n"); \
	  command -v apt-get >/dev/null || { echo "make: no chromium and no apt-get: install Chromium" >&2; exit 1; }; \
	  echo "installing Debian's chromium for the live page's tests"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium; } \
	    >/dev/null || { echo "make: could not install chromium with apt-get (needs root or sudo)" >&2; exit 1; }; }

test: lint browser
	$(BIN)/pytest; status=$$?; [ $$status -eq 5 ] && echo "no tests collected" && exit 1; exit $$status

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

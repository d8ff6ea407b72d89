PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install chat run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (first run only; log in $(VENV)/install.log)..."
	@( $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]' ) \
		> $(VENV)/install.log 2>&1 || { tail -n 30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

chat: $(STAMP)
	$(BIN)/python -m bot chat

run: $(STAMP)
	$(BIN)/python -m bot run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy bot tests scripts bench

# Four workers on two cores: most e2e tests wait (on Telegram's per-chat pace, on restarted
# processes), and work stealing keeps the longest tests from ending the run alone.
# PYTHONDONTWRITEBYTECODE (set on some machines) is emptied for the run: each worker would
# otherwise compile every module and rewrite every test module's assertions again, each time
# (about 2,5 s of CPU per worker); with it empty, that is kept in __pycache__ (ignored by git).
pytest: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -n 4 --dist worksteal

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.broadcast
	$(BIN)/python -m bench.registration
	$(BIN)/python -m bench.export

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

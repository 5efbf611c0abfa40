# The vault's two everyday commands: `make run` and `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= instance
HOST ?= 127.0.0.1
PORT ?= 5000
# PostgreSQL for the second test pass, unless VAULT_TEST_DATABASE_URL says otherwise.
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test lint test-sqlite test-postgres venv clean system-deps

venv: $(STAMP)

# System packages the tests drive for real: SoftHSM2 (the PKCS#11 key provider's HSM) and
# Debian's Chromium (browser tests, driven by Playwright without its own browser download).
SYSTEM_PACKAGES := softhsm2 chromium
system-deps:
	@missing=""; \
	command -v softhsm2-util >/dev/null 2>&1 || missing="$$missing softhsm2"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing (needed by the tests)"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: initialise ./instance with the demo programme (first run only) and serve on 127.0.0.1:5000
run: $(STAMP)
	VAULT_MODE=development VAULT_DATA_DIR=$(DATA_DIR) $(BIN)/vault init --demo
	@echo
	@echo "Demo logins ($(DATA_DIR)/demo-credentials.txt):"
	@cat $(DATA_DIR)/demo-credentials.txt
	@echo
	@echo "Serving the vault on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	VAULT_MODE=development VAULT_DATA_DIR=$(DATA_DIR) exec $(BIN)/gunicorn \
		-c python:vault.web.gunicorn_config --bind $(HOST):$(PORT) --access-logfile - wsgi:app

## test: lint, then the suite on SQLite and on PostgreSQL (when one is reachable) side by side,
## one pass per core; each pass's output is printed whole when it ends
test: lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check .

test-sqlite: $(STAMP) system-deps
	env -u VAULT_TEST_DATABASE_URL $(BIN)/pytest -p no:cacheprovider

test-postgres: $(STAMP) system-deps
	@url="$${VAULT_TEST_DATABASE_URL:-}"; \
	if [ -z "$$url" ] && $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2).close()" 2>/dev/null; then \
		url="$(PG_TEST_URL)"; \
	fi; \
	if [ -z "$$url" ]; then \
		echo "PostgreSQL not reachable on 127.0.0.1:5432 and VAULT_TEST_DATABASE_URL unset: skipping the PostgreSQL pass"; \
	else \
		echo "Running the suite on PostgreSQL"; \
		VAULT_TEST_DATABASE_URL="$$url" $(BIN)/pytest -p no:cacheprovider; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

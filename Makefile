# webhookapp: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test fleet lint screenshots clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt requirements-connect.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-connect.txt
	touch $@ $(VENV)/.runtime

## run: install, migrate, seed a demo account when the database is empty, then serve on HOST:PORT
## with a worker (and a private Redis when REDIS_URL is unset); Ctrl-C stops everything
run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m webhookapp.devserver

## test: the whole suite (unit, HTTP, browser); TEST_DATABASE_URL=postgresql://... for PostgreSQL;
## TEST_WORKERS processes run it side by side (logical: one per core; 0: in this process alone)
TEST_WORKERS ?= logical
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

## fleet: the fleet test (tests/fleet/): hosts as network namespaces, faults under load; needs root
fleet: $(VENV)/.dev
	@started=$$(date +%s); WEBHOOKAPP_FLEET=1 $(BIN)/python -m pytest tests/fleet -p no:cacheprovider; \
	status=$$?; echo "make fleet: $$(( $$(date +%s) - started )) s"; exit $$status

## lint: ruff, then mypy on webhookapp/ and workers/ (strict; [tool.mypy] in pyproject.toml)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

## screenshots: regenerate the README's pictures in docs/
screenshots: $(VENV)/.dev
	$(BIN)/python -m pytest tests/browser -k screenshots --screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache

# reportdesk: `make run` to try it, `make test` to run every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PG_URL := postgres://reportdesk:reportdesk@127.0.0.1:5432/reportdesk
REDIS_TEST_URL := redis://127.0.0.1:6390/0

.PHONY: run test test-sqlite test-postgres services install install-dev migrate demo bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

## The embedded default: SQLite, django-q2's ORM broker, the local provider when no
## OPENAI_API_KEY is set. Web app on http://127.0.0.1:8000/admin/ and the worker together.
run: demo
	$(VENV)/bin/honcho -f Procfile.dev start

services:
	./scripts/test-services.sh

## Every test: on SQLite (with the browser tests) and on PostgreSQL.
test: install-dev services
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	@echo "== tests on SQLite (with browser tests) =="
	env -u DATABASE_URL REDIS_TEST_URL=$(REDIS_TEST_URL) $(PY) -m pytest -q

test-postgres:
	@echo "== tests on PostgreSQL =="
	DATABASE_URL=$(PG_URL) REDIS_TEST_URL=$(REDIS_TEST_URL) $(PY) -m pytest -q -m "not browser"

## Benchmarks (bench/README.md) on a scratch PostgreSQL database next to the test one
## (created if missing; its jobs are deleted) and Redis db 15 for the API's broker.
BENCH_DATABASE_URL ?= $(PG_URL)_bench
bench: install-dev services
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) BENCH_REDIS_URL=redis://127.0.0.1:6390/15 $(PY) bench/run.py
	$(PY) bench/local_engine_eval.py

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* media staticfiles test-artifacts

# Everything runs from the checkout: `make run` and `make test` install what they need first.
# Python 3.11+, Java 17+ and Maven, Go 1.24+ and Node.js 18+ with npm (to build Mailpit, the
# local SMTP server, once) must be on the machine; nothing else.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install run up down status test lint format schemas bench-ingest bench-profile bench-scoring bench-scoring-pipeline clean help
.DEFAULT_GOAL := help

help:
	@echo "make run     install, then start Kafka, PostgreSQL, Mailpit and the four services (Ctrl-C stops)"
	@echo "make up      the same in the background; returns when every service is ready"
	@echo "make down    stop what 'make up' started"
	@echo "make test    install, then run the whole test suite (starts its own Kafka, PostgreSQL, Mailpit)"
	@echo "make lint    ruff and mypy"
	@echo "make bench-ingest / bench-profile / bench-scoring   rerun a benchmark; writes bench/<name>/results.md"
	@echo "make bench-scoring-pipeline   profiles.v1 -> scores.v1 through Kafka, scoring and the relay"
	@echo "make clean   stop everything and delete local data (.retain/) and caches"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/retain run

up: install
	$(VENV)/bin/retain up

down: install
	$(VENV)/bin/retain down

status: install
	$(VENV)/bin/retain status

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: install
	$(VENV)/bin/python -m schemas.export

bench-ingest: install
	$(VENV)/bin/python -m bench.ingest.run

bench-profile: install
	$(VENV)/bin/python -m bench.profile.run

bench-scoring: install
	$(VENV)/bin/python -m bench.scoring.run

bench-scoring-pipeline: install
	$(VENV)/bin/python -m bench.scoring.pipeline

clean:
	-@test -x $(VENV)/bin/retain && $(VENV)/bin/retain down
	rm -rf .retain .cache .tools $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

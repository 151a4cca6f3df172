# sagemaker-ssm-guard: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
.DEFAULT_GOAL := help

VENV        ?= .venv
TOOLS_VENV  ?= .venv-checkov
BENCH_VENV  ?= .venv-bench
PY          := $(VENV)/bin/python
# Python 3.13 (the Lambda runtime) when pyenv has it, else any python3 >= 3.11.
PYTHON_BOOT ?= $(shell (command -v pyenv >/dev/null && PYENV_VERSION=3.13.0 pyenv which python 2>/dev/null) || command -v python3.13 || command -v python3)
PY313       ?= $(shell (command -v pyenv >/dev/null && PYENV_VERSION=3.13.0 pyenv which python 2>/dev/null) || command -v python3.13)
STAMP       := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS_VENV)/.installed
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: help setup demo demo-org member-template test lint typecheck template-check unit integration build bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/shared/requirements.txt
	@$(PYTHON_BOOT) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(TOOLS_STAMP):
	# checkov pins an older boto3 than aws-sam-cli: it lives in its own virtualenv.
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install -q 'checkov==3.3.30'
	touch $@

setup: $(STAMP) $(TOOLS_STAMP) ## create the virtualenvs (idempotent)

demo: $(STAMP) ## run the guard end to end on an embedded local AWS
	$(PY) -m ssm_guard.local.demo

demo-org: $(STAMP) ## one guard for an AWS Organization: central and member accounts, locally
	$(PY) -m ssm_guard.local.org_demo

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy strict on the shared library
	$(VENV)/bin/mypy

template-check: $(STAMP) $(TOOLS_STAMP) ## sam validate --lint, cfn-lint, checkov
	$(VENV)/bin/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint template.yaml
	# --skip-download: the checks are in the package; nothing is fetched (CI has no way out).
	$(TOOLS_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

unit: $(STAMP) ## unit tests only (no network)
	$(VENV)/bin/pytest -m unit -q

test: setup lint typecheck template-check ## lint, type check, template checks, then the whole suite
	$(VENV)/bin/pytest -q -n 2

build: $(STAMP) ## sam build (needs Python 3.13 on PATH)
	PATH="$(dir $(PY313)):$$PATH" $(VENV)/bin/sam build

member-template: $(STAMP) ## the member stack as plain CloudFormation, for StackSets (.aws-sam/)
	$(VENV)/bin/ssm-guard member-template -o .aws-sam/member-template.json

bench: $(STAMP) ## benchmarks into docs/BENCHMARKS.md (BENCH_ARGS="--only events" for one part)
	test -x $(BENCH_VENV)/bin/custodian || ( $(PYTHON_BOOT) -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/python -m pip install -q 'c7n==0.9.53' )
	$(PY) -m bench.run $(BENCH_ARGS)

clean: ## remove build output and virtualenvs
	rm -rf .aws-sam $(VENV) $(TOOLS_VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache

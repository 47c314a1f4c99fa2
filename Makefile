# Entry points. Each target sets up what it needs (a virtualenv with pinned packages) on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
READY := $(VENV)/.installed

.PHONY: demo test lint build check-build bench faults clean

$(READY): pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

## demo: apply the module into the local cloud and run a real pipeline job, printing its timeline.
demo: $(READY)
	PYTHONPATH=tests $(PYTHON) -m localcloud.demo

## test: the whole suite: linters, packaging check, Terraform checks, unit, local-cloud and e2e tests.
test: $(READY) lint check-build
	terraform fmt -check -recursive -diff
	$(PYTHON) -m pytest

lint: $(READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck ssm/linux/*.sh .ci/run

## build: rebuild the Lambda zips in lambda_src/dist (reproducible: same sources, same bytes).
build: $(READY)
	$(PYTHON) lambda_src/build.py

check-build: $(READY)
	$(PYTHON) lambda_src/build.py --check

## bench: cost and latency figures per job in the local cloud (prints a table, writes bench-results.json).
bench: $(READY)
	PYTHONPATH=tests $(PYTHON) -m localcloud.bench

clean:
	rm -rf $(VENV) .local-cloud .pytest_cache

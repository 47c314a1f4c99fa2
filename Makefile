# Entry points. Each target sets up what it needs (a virtualenv with pinned packages) on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
READY := $(VENV)/.installed
# checkov pins boto3/botocore versions that conflict with requirements.lock: it gets its own pinned venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_READY := $(CHECKOV_VENV)/.installed

.PHONY: demo test lint build check-build release-bundle bench faults clean

$(READY): pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

$(CHECKOV_READY): requirements-checkov.lock
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-checkov.lock
	touch $@

## demo: apply the module into the local cloud and run a real pipeline job, printing its timeline.
demo: $(READY)
	PYTHONPATH=tests $(PYTHON) -m scenarios.demo

## test: the whole suite: linters, packaging check, Terraform checks, unit, local-cloud and e2e tests.
# The e2e suite runs in its own process: it serves the local cloud, which shares moto's state with the
# in-process mocks of the other tests.
# Both runs spread over worker processes (pytest-xdist): the first is CPU-bound; the e2e workers mostly wait on
# scaled AWS time, each with its own local cloud and applied example. So the two runs go side by side: the e2e run
# in the background, its output kept in $(E2E_LOG) and printed once both ended; the target fails if either failed.
E2E_LOG := .e2e-test.log
test: $(READY) lint check-build
	@$(PYTHON) -m pytest tests/e2e -n 3 --dist worksteal >$(E2E_LOG) 2>&1 & e2e=$$!; \
	$(PYTHON) -m pytest --ignore=tests/e2e -n 2; unit=$$?; \
	wait $$e2e; e2e_status=$$?; \
	echo "--- e2e (tests/e2e, run beside the tests above) ---"; cat $(E2E_LOG); \
	test $$unit -eq 0 && test $$e2e_status -eq 0

## lint: ruff, mypy over the Lambda code, shellcheck over every shell script we ship, a PowerShell syntax check (a real
## grammar: there is no PowerShell here) of every PowerShell script we ship, checkov over the module and the examples.
lint: $(READY) $(CHECKOV_READY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/shellcheck .ci/run $$(git ls-files '*.sh')
	$(PYTHON) scripts/check_powershell.py
	$(CHECKOV_VENV)/bin/checkov -d . --framework terraform --compact --quiet --skip-download

## build: rebuild the Lambda zips in lambda_src/dist (reproducible: same sources, same bytes).
build: $(READY)
	$(PYTHON) lambda_src/build.py

check-build: $(READY)
	$(PYTHON) lambda_src/build.py --check

## release-bundle: the .tar.gz a release ships and a private module registry serves, in build/release/ (the module,
## its examples and docs, the built Lambda zips; no tests, no Python sources). Refuses stale zips (check-build).
release-bundle: $(READY) check-build
	$(PYTHON) scripts/release_bundle.py --output build/release

## bench: cost and latency figures per job in the local cloud (prints a table, writes bench-results.json and a
## timeline chart per scenario, bench-charts/<scenario>.png and .html).
bench: $(READY)
	PYTHONPATH=tests $(PYTHON) -m scenarios.bench

## faults: the fault, spot, bad-input and pool matrices in the local cloud (prints the tables; fails if a row fails).
faults: $(READY)
	PYTHONPATH=tests $(PYTHON) -m scenarios.faults_report

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .local-cloud .pytest_cache

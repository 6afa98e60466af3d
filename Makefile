# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
CLI := $(VENV)/bin/widf-loader
INSTALLED := $(VENV)/.installed
UV_VERSION := 0.13.8
# The local stack's own environment (fakesnow, connector 4.x, moto), locked apart in local/uv.lock.
LOCAL_VENV := local/.venv
LOCAL_INSTALLED := $(LOCAL_VENV)/.installed

ARCH ?= x86_64

.PHONY: demo test test-fast lint install up down clean package bench perf-doc soak

$(INSTALLED): pyproject.toml uv.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@# a venv made by uv has no pip, but may already hold uv
	@$(VENV)/bin/uv --version 2>/dev/null | grep -qx "uv $(UV_VERSION).*" || { \
	  $(VENV)/bin/python -m pip --version >/dev/null 2>&1 || $(VENV)/bin/python -m ensurepip --upgrade >/dev/null; \
	  $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	@# exact: what the lock no longer lists goes (uv itself is in the dev extra, which holds the tools'
	@# extras; not `lambda`, whose connector is the artefact's)
	@# --compile-bytecode, as pip does by default: a process that may not write bytecode (PYTHONDONTWRITEBYTECODE,
	@# a read-only install) would otherwise compile every module it imports, every time it starts
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --quiet --frozen --extra dev --compile-bytecode
	@$(VENV)/bin/python -m compileall -q src >/dev/null
	@touch $@

# Made with the uv bootstrapped above; the stack's code stays in src/ (local/pyproject.toml says why).
$(LOCAL_INSTALLED): local/pyproject.toml local/uv.lock $(INSTALLED)
	@test -x $(LOCAL_VENV)/bin/python || $(VENV)/bin/uv venv --quiet --python $(PYTHON) $(LOCAL_VENV)
	@UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(LOCAL_VENV) $(VENV)/bin/uv sync --quiet --frozen --project local --compile-bytecode
	@touch $@

install: $(INSTALLED) $(LOCAL_INSTALLED)

demo: install
	@$(CLI) local up
	@status=0; { $(CLI) demo fail && $(CLI) demo success; } || status=$$?; \
	 $(CLI) local down; \
	 if [ $$status -eq 0 ]; then echo "Demo complete: act I failed on WIDF, act II loaded."; else echo "Demo FAILED (exit $$status)"; fi; \
	 exit $$status

# ruff (format and lint) over the code, mypy over src/: the local stack's package against its own
# environment's libraries, the rest against the project's.
LINTED := src infra bench tests
lint: install
	@$(VENV)/bin/ruff format --check --quiet $(LINTED)
	@$(VENV)/bin/ruff check --quiet $(LINTED)
	@$(VENV)/bin/mypy src/widf_loader src/widf_ops src/widf_cli
	@$(VENV)/bin/mypy --python-executable $(LOCAL_VENV)/bin/python src/widf_local

# The local stack's own tests from its environment, then everything else from the project's.
ENGINE_TESTS := PYTHONPATH=src $(LOCAL_VENV)/bin/python -m pytest -q -c tests/local/engine/pytest.ini tests/local/engine
test: install
	@$(ENGINE_TESTS)
	@$(VENV)/bin/python -m pytest

# The same without what starts a local stack or is as slow as one (the `stack` marker): well under a minute.
test-fast: install
	@$(ENGINE_TESTS)
	@$(VENV)/bin/python -m pytest -q -m "not stack"

# The Lambda artefact, dist/widf-loader-lambda.zip (ARCH=arm64 for Graviton; BYTECODE=0 leaves out the compiled modules).
package: $(INSTALLED)
	@$(VENV)/bin/python infra/package.py --arch $(ARCH) $(if $(filter 0,$(BYTECODE)),--no-bytecode)

# Snowpark + pandas, for the benchmark's comparisons only: never in the project's environment.
BENCH_VENV := bench/.venv-snowpark
$(BENCH_VENV)/.installed:
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'snowflake-snowpark-python[pandas]==1.56.*' 'boto3>=1.40'
	@touch $@

# Every figure is a ratio of two things measured in the same run on this machine, so that the machine's
# own speed cancels out; prints a table, writes bench/results.json and docs/performance.md.
bench: install $(BENCH_VENV)/.installed
	@$(MAKE) -s package
	@$(VENV)/bin/python bench/bench.py

# docs/performance.md again from the existing bench/results.json (bench/report.py: standard library only).
perf-doc:
	@$(PYTHON) bench/report.py

# The soak at full size: thousands of files under random faults (`make test` runs 60 of them).
SOAK_FILES ?= 3000
soak: install
	@WIDF_SOAK_FILES=$(SOAK_FILES) $(VENV)/bin/python -m pytest -n 0 -s --timeout 0 -p no:cacheprovider tests/local/test_faults.py -k soak

up: install
	@$(CLI) local up

down:
	@test -x $(CLI) && $(CLI) local down || true

clean: down
	rm -rf $(VENV) $(LOCAL_VENV) .local dist build

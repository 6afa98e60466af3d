# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
CLI := $(VENV)/bin/widf-loader
INSTALLED := $(VENV)/.installed
UV_VERSION := 0.13.8

.PHONY: demo test install up down clean

$(INSTALLED): pyproject.toml uv.lock
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# --inexact keeps uv itself, which the lock does not list
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --quiet --frozen --all-extras --inexact
	@touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	@$(CLI) local up
	@status=0; { $(CLI) demo fail && $(CLI) demo success; } || status=$$?; \
	 $(CLI) local down; \
	 if [ $$status -eq 0 ]; then echo "Demo complete: act I failed on WIDF, act II loaded."; else echo "Demo FAILED (exit $$status)"; fi; \
	 exit $$status

test: $(INSTALLED)
	@$(VENV)/bin/python -m pytest

up: $(INSTALLED)
	@$(CLI) local up

down:
	@test -x $(CLI) && $(CLI) local down || true

clean: down
	rm -rf $(VENV) .local dist

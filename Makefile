# s2sflow: `make run` installs everything and runs the pipeline; `make test` installs and runs the tests.
# Both work from a fresh clone; neither needs the venv activated.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TASKS ?=
PYTEST_ARGS ?=

# The data mirror: ../shared/data when it is there (otherwise the download stage falls back to the
# public URLs and the packaged copies named in params.yaml).
ifneq ($(wildcard ../shared/data/MANIFEST.md),)
export S2SFLOW_DATA_MIRROR ?= $(abspath ../shared/data)
endif
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW := ignore
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export HF_DATASETS_DISABLE_PROGRESS_BARS := 1

.PHONY: install browser run test repro server deploy worker chain-deploy chain-worker fanout push pull benchmark clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo "s2sflow: installing the pinned dependencies into $(VENV) (2-3 minutes on a fresh machine)"
	@start=$$(date +%s); set -e; set -x; \
	$(PYTHON) -m venv $(VENV); \
	$(PY) -m pip install -q --upgrade pip; \
	$(PY) -m pip install -q -e '.[test]'; \
	set +x; echo $$(( $$(date +%s) - start )) > $(VENV)/.install_seconds
	touch $@

install: $(VENV)/.installed  ## create .venv and install the pinned dependencies

run: install  ## run the pipeline flow (all tasks in params.yaml, or TASKS=mnist,...)
	$(PY) -m flows.pipeline $(if $(TASKS),--tasks $(TASKS))

repro: install  ## plain `dvc repro` (no Prefect)
	$(VENV)/bin/dvc repro

browser:  ## Debian's Chromium + ChromeDriver for the results-page test (apt-get, as root, when missing)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "s2sflow: installing chromium and chromium-driver (apt-get) for the results-page test"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else \
	    echo "s2sflow: the results-page test needs Chromium: apt-get install chromium chromium-driver" >&2; \
	  fi; \
	fi

test: install browser  ## lint (ruff), then run the test suite in a hermetic environment (temp Prefect/DVC/HF homes)
	@tmp=$$(mktemp -d); \
	export PREFECT_HOME=$$tmp/prefect DVC_SITE_CACHE_DIR=$$tmp/dvc-site HF_HOME=$$tmp/hf MPLCONFIGDIR=$$tmp/mpl; \
	unset PREFECT_API_URL PREFECT_FLOWS_HEARTBEAT_FREQUENCY; \
	$(VENV)/bin/ruff check . && $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; rm -rf $$tmp; exit $$rc

server: install  ## start a local Prefect server (UI: http://127.0.0.1:4200)
	$(VENV)/bin/prefect server start

deploy: install  ## register the nightly deployment (needs `make server` running)
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(PY) -m flows.deploy

worker: install  ## start a process worker for the deployment's pool
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(VENV)/bin/prefect worker start --pool s2sflow-process

chain-deploy: install  ## register the chain deployment for fan-out to several machines (flows/fanout.py)
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(PY) -m flows.fanout deploy

chain-worker: install  ## in this clone: run fanned-out task chains, one at a time (pool s2sflow-chains)
	S2SFLOW_CLONE=$(CURDIR) PYTHONPATH=$(CURDIR) PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} \
	  $(VENV)/bin/prefect worker start --pool s2sflow-chains --limit 1

fanout: install  ## fan the task chains (TASKS=a,b) out to the chain workers, then restore their outputs here
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(PY) -m flows.fanout run $(if $(TASKS),--tasks $(TASKS))

push: install  ## upload every DVC output and the run-cache to the default DVC remote (REMOTE=name for another)
	$(VENV)/bin/dvc push --run-cache $(if $(REMOTE),--remote $(REMOTE))

pull: install  ## download every DVC output and the run-cache from the default DVC remote (REMOTE=name)
	$(VENV)/bin/dvc pull --run-cache $(if $(REMOTE),--remote $(REMOTE))

benchmark: install  ## Lightning vs plain PyTorch wall time per epoch
	$(PY) benchmarks/lightning_vs_pytorch.py

clean:  ## remove checkpoints of interrupted runs (pipeline outputs stay: use dvc gc for the cache)
	rm -rf checkpoints

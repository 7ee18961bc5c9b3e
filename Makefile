# albdrain build, test and demo entry points.
# The control-plane binaries for tests are built from the Go module proxy once
# and cached by version outside the work tree (ALBDRAIN_CACHE); make rebuilds
# them only when missing.

KUBE_VERSION  ?= v1.37.2
ETCD_VERSION  ?= v3.6.16
ALBDRAIN_CACHE ?= $(HOME)/.cache/albdrain
ASSETS        := $(ALBDRAIN_CACHE)/k8s-$(KUBE_VERSION)-etcd-$(ETCD_VERSION)
# The real node's runtime: the version is the one its wrapper module pins.
CONTAINERD_VERSION := $(shell sed -n 's|^require github.com/containerd/containerd/v2 ||p' e2e/tools/containerd/go.mod)
CONTAINERD_ASSETS  := $(ALBDRAIN_CACHE)/containerd-$(CONTAINERD_VERSION)
# promtool runs the alerts' rule unit tests (e2e/chart); the version is the one its wrapper module pins.
PROMTOOL_VERSION := $(shell sed -n 's|^require github.com/prometheus/prometheus ||p' e2e/tools/promtool/go.mod)
PROMTOOL           := $(ALBDRAIN_CACHE)/promtool-$(PROMTOOL_VERSION)/promtool
# actionlint checks the GitHub Actions workflows in lint; the version is the one its wrapper module pins.
ACTIONLINT_VERSION := $(shell sed -n 's|^require github.com/rhysd/actionlint ||p' e2e/tools/actionlint/go.mod)
ACTIONLINT         := $(ALBDRAIN_CACHE)/actionlint-$(ACTIONLINT_VERSION)/actionlint
CONTAINERD_LDFLAGS := -s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)
KUBE_LDFLAGS  := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION)))
ETCD_LDFLAGS  := -s -w
GO            ?= go
BIN           := bin
IMAGE         ?= ghcr.io/albdrain/albdrain:dev
# TOOLS is the release tooling's module (demo, bench, image, SBOM): it imports the
# harness, but no test imports it.
TOOLS         := e2e/tools

export KUBEBUILDER_ASSETS := $(ASSETS)
export ALBDRAIN_CONTAINERD_ASSETS := $(CONTAINERD_ASSETS)
export ALBDRAIN_PROMTOOL := $(PROMTOOL)

# bash with pipefail, so a build piped into its progress counter still fails the target.
SHELL         := bash
.SHELLFLAGS   := -o pipefail -ec
# progress counts the package paths `go build -v` lists, printing a line every 100 so a long
# first build shows it is alive, and passes anything else (errors) through.
progress      := awk '/[: ]/ { print; next } { if (++n % 100 == 0) { print "   ... " n " packages compiled"; fflush() } }'

.PHONY: all build test test-unit test-tools release-cache test-integration test-e2e test-node test-e2e-node lint fuzz demo bench image release-local assets node-assets promtool actionlint generate clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# test runs every test, tier by tier (lint first): see e2e/README.md for which
# package is in which tier, what it costs and what it needs.
test: lint test-unit test-tools test-integration test-e2e-node

# test-unit runs albdrain's own unit tests: the root module under -short,
# which skips its few envtest tests (test-integration runs them); no assets.
test-unit:
	$(GO) test -short -count=1 -timeout 10m ./...

# test-tools runs the release tooling's own tests (image, SBOM, bench's
# statistics) and the README's install steps followed against a loopback
# registry and a real apiserver (e2e/tools/install: make release-local,
# helm push and install, the plugin), which need the control plane.
test-tools: assets release-cache
	cd $(TOOLS) && $(GO) test -count=1 -timeout 20m ./...

# release-cache compiles the images' binaries for every architecture once,
# as the image builder does (static, -trimpath), so that the tools tier's
# tests, which build them in two processes at once, find them in the build
# cache: on a cold cache each compiled the world for arm64 itself, and both
# ran past their timeout on a loaded machine.
release-cache:
	for a in $(RELEASE_ARCHES); do CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags='-s -w' -o /dev/null ./cmd/... || exit 1; done

# E2E_SCENARIOS and E2E_NODE are the harness module's packages of test-e2e and
# test-node; test-integration runs every other one, so a new package lands there.
E2E_SCENARIOS := scenario faults
E2E_NODE      := node
e2e_other     := $(GO) list ./... | grep -vE '/e2e/($(subst $(eval) ,|,$(E2E_SCENARIOS) $(E2E_NODE)))(/|$$)'
# root_envtest lists the root packages whose tests start a real apiserver
# (they import envtest, and skip under -short), so none is left out.
root_envtest  := $(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
	| awk '/ sigs.k8s.io\/controller-runtime\/pkg\/envtest( |$$)/ { print $$1 }'

# test-integration runs the tests against a real kube-apiserver and etcd
# (envtest) and the harness's own tests: no node, no scenario.
test-integration: assets promtool
	$(GO) test -count=1 -timeout 10m $$($(root_envtest))
	cd e2e && $(GO) test -count=1 -timeout 15m $$($(e2e_other))

# test-e2e runs the scenarios and the faults: a local cluster (real
# apiserver, kubelet stand-ins, the ELBv2 emulator) under load.
test-e2e: assets
	cd e2e && $(GO) test -count=1 -timeout 25m $(addprefix ./,$(E2E_SCENARIOS))

# test-node runs albdrain on a real node (kubelet, containerd, runc, CNI in
# namespaces of their own), which needs root: it fails, not skips, without it.
test-node: assets node-assets
	@if [ "$$(id -u)" -ne 0 ]; then echo "test-node: the real node needs root (network and mount namespaces); run as root, e.g. sudo -E make test-node" >&2; exit 1; fi
	cd e2e && $(GO) test -count=1 -timeout 15m ./$(E2E_NODE)/...

# test-e2e-node runs test-e2e's and test-node's packages in one go test, two
# at a time as test-e2e alone does: the node starts when the faults end, while
# the longer scenarios still run, instead of after both.
test-e2e-node: assets node-assets
	@if [ "$$(id -u)" -ne 0 ]; then echo "test-e2e-node: the real node needs root (network and mount namespaces); run as root, e.g. sudo -E make test" >&2; exit 1; fi
	cd e2e && $(GO) test -count=1 -p 2 -timeout 25m $(addprefix ./,$(E2E_SCENARIOS)) ./$(E2E_NODE)/...

# fuzz runs each fuzz target for FUZZTIME beyond its committed seeds (which
# every `go test` already runs); minimising a new input is capped so that it
# does not take the whole budget of a short run. Both are counts of inputs
# (Nx), not durations: Go before 1.27 can end a time-bounded fuzz run with a
# bare "context deadline exceeded" and no failing input (golang/go#75804).
FUZZTIME ?= 20000x
FUZZMINIMIZETIME ?= 2000x
FUZZ_TARGETS := \
	./drain/helper/procnet:FuzzParse \
	./internal/contract:FuzzParse \
	./internal/contract:FuzzAnswer \
	./drain/watcher/endpoint:FuzzHoldRequest \
	./webhook/inject:FuzzApply \
	./webhook/inject:FuzzPatch \
	./webhook/inject:FuzzOverrides

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo ">> fuzzing $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$pkg; \
	done

# lint checks formatting, vet and tidiness of both modules, that the
# generated DeepCopy of internal/lbc is current (controller-gen, pinned in
# e2e/tools/controller-gen), and the layout: no import runs upward, and the
# in-pod helper imports only drain/helper and the contract, so it carries no
# Kubernetes or AWS code (internal/layers; test-unit runs it too). actionlint
# checks the workflows (.github/workflows), their run scripts too when
# shellcheck is on PATH (.ci/run installs it).
lint: $(ACTIONLINT)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	cd $(TOOLS) && $(GO) vet ./...
	$(GO) mod tidy -diff
	cd e2e && $(GO) mod tidy -diff
	cd $(TOOLS) && $(GO) mod tidy -diff
	@$(GO) generate ./internal/lbc; if ! git diff --quiet -- internal/lbc/zz_generated.deepcopy.go; then \
		echo "internal/lbc: the generated DeepCopy is stale (now regenerated: commit it)"; git diff --stat -- internal/lbc/zz_generated.deepcopy.go; exit 1; fi
	$(GO) test -count=1 ./internal/layers
	@command -v shellcheck >/dev/null || echo "lint: no shellcheck on PATH: actionlint does not check the workflows' run scripts"
	$(ACTIONLINT)

# demo runs the local demo: a rolling restart under load behind the local
# ALB, whose nodes draw heavy-tailed lags, with no protection, a fixed
# preStop sleep at the lag's p90, and albdrain. DEMO_FLAGS are passed on
# (e.g. DEMO_FLAGS='-lag=uniform:min=1s,max=3s -seed=2').
demo: assets
	@echo ">> compiling the demo (the first time takes a minute or two)"
	cd $(TOOLS) && $(GO) build -o $(abspath $(BIN)/albdrain-demo) ./cmd/demo
	$(BIN)/albdrain-demo -go=$(GO) $(DEMO_FLAGS)

# bench measures albdrain's costs, each beside a baseline from the same run:
# admission latency, hold precision against fixed sleeps under field-like
# lags, the ELBv2 call budget and memory at scale. BENCH_JSON=file also
# writes the figures there as JSON; BENCH_FLAGS are passed on, e.g.
# BENCH_FLAGS='-only=holds -lag=lognormal:median=2s,p99=10s -nodes=3 -seed=7 -rate=5'.
# BENCH_FLAGS=-only=rotation runs the node drain behind 3 replicas (not in
# the default set, nor in CI: about 10 minutes).
bench: assets
	cd $(TOOLS) && $(GO) build -o $(abspath $(BIN)/albdrain-bench) ./cmd/bench
	BENCH_JSON=$(BENCH_JSON) $(BIN)/albdrain-bench -go=$(GO) $(BENCH_FLAGS)

# lbc-reaction times the real AWS Load Balancer Controller beside the
# stand-in (e2e/tools/lbcreact): from an EndpointSlice write to its
# Register/DeregisterTargets at the emulator. The controller is not in the Go
# module proxy, so this never runs in CI: LBC_SRC names its source tree (e.g.
# `git archive v3.5.0 | tar -x -C dir`), whose controller is built there.
# LBC_REACTION_FLAGS are passed on, e.g. '-rounds=5 -json=file'.
.PHONY: lbc-reaction
lbc-reaction: assets
	@test -n "$(LBC_SRC)" || { echo "lbc-reaction: set LBC_SRC to the controller's source tree"; exit 1; }
	cd $(LBC_SRC) && $(GO) build -o $(abspath $(LBC_SRC))/bin/controller .
	cd $(TOOLS) && $(GO) build -o $(abspath $(BIN)/albdrain-lbcreact) ./cmd/lbcreact
	$(BIN)/albdrain-lbcreact -lbc-src=$(abspath $(LBC_SRC)) -lbc-binary=$(abspath $(LBC_SRC))/bin/controller $(LBC_REACTION_FLAGS)

# image cross-compiles the manager and the in-pod helper (no emulator, no
# container engine) into two multi-arch images for linux/amd64 and
# linux/arm64: IMAGE (manager and helper) and HELPER_IMAGE (the helper alone,
# for hold.helperImage; default: IMAGE's repository with -hold). It writes
# them as an OCI archive for `ctr images import` or `docker load`, and the
# chart values that install them by digest to $(IMAGE_VALUES) (helm install
# -f); PUSH=1 also pushes both to their registries.
IMAGE_ARCHIVE ?= $(BIN)/albdrain-image.tar
IMAGE_VALUES  ?= $(BIN)/albdrain-values.yaml
HELPER_IMAGE  ?=
image:
	cd $(TOOLS) && $(GO) run ./cmd/image -root $(CURDIR) -go=$(GO) -bin $(abspath $(BIN)/image) \
		-tag $(IMAGE) $(if $(HELPER_IMAGE),-helper-tag $(HELPER_IMAGE)) \
		-o $(abspath $(IMAGE_ARCHIVE)) -values $(abspath $(IMAGE_VALUES)) $(if $(PUSH),-push)

# release-local builds, into $(BIN)/release, everything a release publishes
# except the push: both multi-arch images in one OCI layout (oci/), an SPDX
# SBOM of every binary in them, and the chart packaged with its image pinned
# to the built digests. VERSION defaults to the chart's appVersion;
# RELEASE_REPOSITORY is albdrain's image repository. The release workflow
# (.github/workflows/release.yml) runs it with PUSH=1, then pushes the chart,
# attests the SBOM and signs.
RELEASE_REPOSITORY ?= ghcr.io/albdrain/albdrain
VERSION ?= $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*$$/\1/p' charts/albdrain/Chart.yaml)
RELEASE_DIR := $(BIN)/release
# RELEASE_ARCHES are the images' architectures, release.Arches in e2e/tools.
RELEASE_ARCHES := amd64 arm64
release-local:
	cd $(TOOLS) && $(GO) run ./cmd/image -root $(CURDIR) -go=$(GO) -bin $(abspath $(RELEASE_DIR)/bin) \
		-tag $(RELEASE_REPOSITORY):$(VERSION) -layout $(abspath $(RELEASE_DIR)/oci) \
		-sbom $(abspath $(RELEASE_DIR)/albdrain.spdx.json) -chart $(abspath $(RELEASE_DIR)) \
		-values $(abspath $(RELEASE_DIR)/values.yaml) $(if $(PUSH),-push)

NODE_ASSETS := $(ASSETS)/kubelet $(ASSETS)/kube-proxy $(ASSETS)/kube-scheduler \
	$(CONTAINERD_ASSETS)/containerd $(CONTAINERD_ASSETS)/ctr $(CONTAINERD_ASSETS)/containerd-shim-runc-v2
# assets is the control plane, which every test, the demo and the bench run;
# node-assets the real nodes' kubelet, kube-proxy, kube-scheduler and containerd, which only make test runs.
assets: $(ASSETS)/kube-apiserver $(ASSETS)/kube-controller-manager $(ASSETS)/etcd
node-assets: $(NODE_ASSETS)

$(ASSETS)/kube-apiserver $(ASSETS)/kube-controller-manager $(ASSETS)/kubelet $(ASSETS)/kube-proxy $(ASSETS)/kube-scheduler:
	@mkdir -p $(ASSETS)
	@echo ">> building $(@F) $(KUBE_VERSION) from the Go module proxy (first time only, up to ~10 min)"
	cd e2e/tools/kube && CGO_ENABLED=0 $(GO) build -v -trimpath -ldflags "$(KUBE_LDFLAGS)" \
		-o $@.tmp k8s.io/kubernetes/cmd/$(@F) 2>&1 | $(progress)
	mv $@.tmp $@

$(ASSETS)/etcd:
	@mkdir -p $(ASSETS)
	@echo ">> building etcd $(ETCD_VERSION) from the Go module proxy (first time only)"
	cd e2e/tools/etcd && CGO_ENABLED=0 $(GO) build -v -trimpath -ldflags "$(ETCD_LDFLAGS)" \
		-o $@.tmp go.etcd.io/etcd/server/v3 2>&1 | $(progress)
	mv $@.tmp $@

# containerd, ctr and the runc shim of the real node (runc itself and the CNI
# plugins come from the distribution: see .ci/run).
$(CONTAINERD_ASSETS)/containerd $(CONTAINERD_ASSETS)/ctr $(CONTAINERD_ASSETS)/containerd-shim-runc-v2:
	@mkdir -p $(CONTAINERD_ASSETS)
	@echo ">> building $(@F) $(CONTAINERD_VERSION) from the Go module proxy (first time only, ~5 min)"
	cd e2e/tools/containerd && CGO_ENABLED=0 $(GO) build -v -trimpath -tags "no_btrfs no_devmapper no_zfs" \
		-ldflags "$(CONTAINERD_LDFLAGS)" -o $@.tmp github.com/containerd/containerd/v2/cmd/$(@F) 2>&1 | $(progress)
	mv $@.tmp $@

# generate regenerates the DeepCopy methods of internal/lbc's API types.
generate:
	$(GO) generate ./internal/lbc

promtool: $(PROMTOOL)

$(PROMTOOL):
	@mkdir -p $(@D)
	@echo ">> building promtool $(PROMTOOL_VERSION) from the Go module proxy (first time only)"
	cd e2e/tools/promtool && CGO_ENABLED=0 $(GO) build -v -trimpath -ldflags "-s -w" \
		-o $@.tmp github.com/prometheus/prometheus/cmd/promtool 2>&1 | $(progress)
	mv $@.tmp $@

actionlint: $(ACTIONLINT)

$(ACTIONLINT):
	@mkdir -p $(@D)
	@echo ">> building actionlint $(ACTIONLINT_VERSION) from the Go module proxy (first time only)"
	cd e2e/tools/actionlint && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" \
		-o $@.tmp github.com/rhysd/actionlint/cmd/actionlint
	mv $@.tmp $@

clean:
	rm -rf $(BIN)

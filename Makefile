# albdrain build, test and demo entry points.
# The control-plane binaries for tests are built from the Go module proxy once
# and cached by version outside the work tree (ALBDRAIN_CACHE); make rebuilds
# them only when missing.

KUBE_VERSION  ?= v1.37.2
ETCD_VERSION  ?= v3.6.16
ALBDRAIN_CACHE ?= $(HOME)/.cache/albdrain
ASSETS        := $(ALBDRAIN_CACHE)/k8s-$(KUBE_VERSION)-etcd-$(ETCD_VERSION)
KUBE_LDFLAGS  := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION)))
ETCD_LDFLAGS  := -s -w
GO            ?= go
BIN           := bin

export KUBEBUILDER_ASSETS := $(ASSETS)

.PHONY: all build test unit integration e2e demo bench lint fmt vet assets clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

assets: $(ASSETS)/kube-apiserver $(ASSETS)/kube-controller-manager $(ASSETS)/etcd

$(ASSETS)/kube-apiserver $(ASSETS)/kube-controller-manager:
	@mkdir -p $(ASSETS)
	@echo ">> building $(@F) $(KUBE_VERSION) from the Go module proxy (first time only, ~10 min)"
	cd e2e/tools/kube && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" \
		-o $@.tmp k8s.io/kubernetes/cmd/$(@F)
	mv $@.tmp $@

$(ASSETS)/etcd:
	@mkdir -p $(ASSETS)
	@echo ">> building etcd $(ETCD_VERSION) from the Go module proxy (first time only)"
	cd e2e/tools/etcd && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(ETCD_LDFLAGS)" \
		-o $@.tmp go.etcd.io/etcd/server/v3
	mv $@.tmp $@

clean:
	rm -rf $(BIN)

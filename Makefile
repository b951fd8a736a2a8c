# AI Factory Operator. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

# Binaries built from the Go module proxy (hack/ensure-bins.sh) live outside the repository.
AIFACTORY_BIN_DIR ?= $(HOME)/.cache/aifactory-operator/bin
export AIFACTORY_BIN_DIR
ENSURE_BINS := hack/ensure-bins.sh
CONTROLLER_GEN := $(AIFACTORY_BIN_DIR)/controller-gen
FACTORY_BINS := kube-apiserver etcd kube-controller-manager kube-scheduler kubectl kwok kueue
TEST_BINS := $(FACTORY_BINS) helm
GOLANGCI_LINT := $(AIFACTORY_BIN_DIR)/golangci-lint

# Generated files; `make verify` regenerates them and fails on any difference.
GENERATED := api config/crd config/rbac config/webhook charts/aifactory-operator/crds charts/aifactory-operator/templates

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Build controller-gen and golangci-lint (pinned in hack/tools) if missing.
	@$(ENSURE_BINS) controller-gen golangci-lint >/dev/null

.PHONY: test-bins
test-bins: ## Build what the integration, chart and end-to-end tests run (pinned in hack/tools) if missing.
	@$(ENSURE_BINS) $(TEST_BINS) >/dev/null

.PHONY: generate
generate: ## Generate deepcopy code.
	@$(ENSURE_BINS) controller-gen >/dev/null
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and webhook registration from the markers, and the chart's copies of them.
	@$(ENSURE_BINS) controller-gen >/dev/null
	$(CONTROLLER_GEN) crd:generateEmbeddedObjectMeta=true paths=./api/v1alpha1/... output:crd:artifacts:config=config/crd/bases
	go run ./hack/crdtrim config/crd/bases/aifactory.eu_trainingjobs.yaml
	rm -f charts/aifactory-operator/crds/*.yaml && cp config/crd/bases/*.yaml charts/aifactory-operator/crds/
	$(CONTROLLER_GEN) rbac:roleName=aifactory-operator-manager webhook paths=./controllers/... output:rbac:artifacts:config=config/rbac output:webhook:artifacts:config=config/webhook
	go run ./hack/chartgen .

.PHONY: verify
verify: generate manifests ## Regenerate and fail if a generated file or go.mod differs from the commit.
	go mod tidy
	@if ! git diff --quiet -- $(GENERATED) go.mod go.sum || [ -n "$$(git ls-files --others --exclude-standard -- $(GENERATED))" ]; then \
	  echo "generated files are stale; run 'make generate manifests' and commit:"; \
	  git status --short -- $(GENERATED) go.mod go.sum; git --no-pager diff --stat -- $(GENERATED) go.mod go.sum; exit 1; fi
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	@echo "verify: generated files are up to date"

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: ## Run golangci-lint (config in .golangci.yml).
	@$(ENSURE_BINS) golangci-lint >/dev/null
	$(GOLANGCI_LINT) run ./...

.PHONY: build
build: ## Build the manager binary into bin/.
	CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd/manager

.PHONY: unit
unit: test-bins ## Run the Go tests: unit, envtest integration, chart, and end to end on a test factory.
	KUBEBUILDER_ASSETS=$(AIFACTORY_BIN_DIR) go test ./... -count=1

.PHONY: test
test: verify vet lint build unit ## Everything CI runs: generated files, vet, lint, build and all tests.

FACTORY_DIR ?= .factory
SAMPLES ?= all

.PHONY: factory-bins
factory-bins: ## Build everything the local factory runs (pinned in hack/tools), and the operator and factory binaries.
	@$(ENSURE_BINS) $(FACTORY_BINS) >/dev/null
	CGO_ENABLED=0 go build -trimpath -o $(FACTORY_DIR)/bin/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -o $(FACTORY_DIR)/bin/factory ./hack/factory

.PHONY: factory
factory: factory-bins ## Start the local AI factory and run the samples (SAMPLES=none: start it only).
	$(FACTORY_DIR)/bin/factory up --dir=$(FACTORY_DIR) --samples=$(SAMPLES)

.PHONY: factory-down
factory-down: ## Stop the local AI factory (WIPE=1 also deletes its state).
	@if [ -x $(FACTORY_DIR)/bin/factory ]; then $(FACTORY_DIR)/bin/factory down --dir=$(FACTORY_DIR) $(if $(WIPE),--wipe); \
	  else echo "No factory in $(FACTORY_DIR)"; fi

.PHONY: fmt
fmt: ## Format the Go code (gofmt and goimports through golangci-lint).
	@$(ENSURE_BINS) golangci-lint >/dev/null
	$(GOLANGCI_LINT) fmt ./...

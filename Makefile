# aerofn: `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
EXAMPLES_OUT := $(BIN)/examples
export AEROFN_EXAMPLES_DIR := $(CURDIR)/$(EXAMPLES_OUT)
# The JavaScript runtime module (internal/jsruntime/guest: QuickJS built for
# wasm32-wasi by scripts/build-jsrt.sh), next to bin/aerofn where `aerofn
# serve` looks for it; tests use it too.
JSRT := $(BIN)/aerofn-jsrt.wasm
export AEROFN_JS_RUNTIME := $(CURDIR)/$(JSRT)

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

build: ## Build bin/aerofn and its JavaScript runtime bin/aerofn-jsrt.wasm
	@./scripts/check-go.sh
	$(GO) build -o $(BIN)/aerofn ./cmd/aerofn
	@$(MAKE) --no-print-directory $(JSRT)

# Rebuilt only when its sources change (a build takes about a minute).
$(JSRT): scripts/build-jsrt.sh $(wildcard internal/jsruntime/guest/*.c internal/jsruntime/guest/*.js internal/jsruntime/guest/include/*.h)
	./scripts/build-jsrt.sh $(JSRT)

examples: ## Build every example function to bin/examples/*.wasm
	OUT_DIR=$(EXAMPLES_OUT) ./examples/build.sh

run: build examples ## Install/start PostgreSQL if needed, start aerofn, deploy the examples, print how to call them
	./scripts/run.sh

stop: ## Stop the server that `make run` started
	./scripts/run.sh stop

lint: ## gofmt and go vet (host and wasip1; the SDK is its own module, sdk/go)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./examples/...
	cd sdk/go && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

js-deps: ## Install the pinned JS clients of the Node and browser tests (tests/js, npm ci)
	cd tests/js && npm ci --no-audit --no-fund

test: lint build examples js-deps ## Everything CI checks: lint, build, examples, all tests with -race, one small benchmark pass
	./scripts/ensure-postgres.sh
	$(GO) test -race -count=1 -p 1 -timeout 45m ./...
	cd sdk/go && $(GO) test -race -count=1 ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x ./internal/... > /dev/null
	./scripts/ensure-wrk.sh
	$(GO) run ./internal/bench/cmd -n 100 -aerofn $(BIN)/aerofn -out $${TMPDIR:-/tmp}/aerofn-bench-smoke.md > /dev/null

test-race: test ## Alias of test (the suite always runs with -race)

bench: build examples ## Run the benchmarks (installs wrk, workerd and Deno if missing) and write BENCHMARKS.md
	./scripts/ensure-postgres.sh
	./scripts/ensure-wrk.sh
	$(GO) run ./internal/bench/cmd -aerofn $(BIN)/aerofn -out BENCHMARKS.md

FUZZTIME ?= 30s
# The invoke → record target is counted in calls: starting its node and
# building its guest take most of a short time budget on a busy machine.
FUZZCALLS ?= 3000x

fuzz: ## Fuzz the cron parser (FUZZTIME, default 30s), then the invoke → record path on a real node (FUZZCALLS, default 3000x)
	$(GO) test ./internal/scheduler/cronspec -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	./scripts/ensure-postgres.sh
	$(GO) test ./internal/e2e -run '^$$' -fuzz FuzzInvokeRecord -fuzztime $(FUZZCALLS) -parallel 2

clean: ## Remove build output
	rm -rf $(BIN)

.PHONY: help build examples js-deps run stop lint test test-race bench fuzz clean

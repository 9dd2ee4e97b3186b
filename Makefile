# Vigil — run "make help" for the targets.
SHELL := /bin/bash
GO ?= go
export VIGIL_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/vigil
	$(GO) build -o bin/vigil ./cmd/vigil

.PHONY: run
run: ## start Vigil with the embedded defaults (SQLite in ./vigil-data)
	$(GO) run ./cmd/vigil serve

.PHONY: test
test: test-deps ## run the whole test suite with the race detector (what CI runs)
	$(GO) test -race -count=1 -timeout 30m ./...

.PHONY: test-deps
test-deps: ## install and start what the tests need (PostgreSQL, Debian and npm packages)
	@scripts/test-deps.sh

.PHONY: vet
vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

.PHONY: pii-eval
pii-eval: ## measure PII accuracy (precision/recall/F1 per entity) on ../shared/testdata/pii
	$(GO) run ./cmd/vigil pii eval ../shared/testdata/pii

.PHONY: bench-pii
bench-pii: ## run the PII engine benchmarks
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./internal/pii/

.PHONY: demo-records
demo-records: ## import the demo ISO 42001 records (examples/records) into a running Vigil (needs VIGIL_TOKEN)
	$(GO) run ./cmd/vigil records import examples/records

.PHONY: fuzz-records
fuzz-records: ## fuzz the YAML record parser for 60s
	$(GO) test -run XXX -fuzz FuzzParseRecords -fuzztime 60s ./internal/aims/
.PHONY: policy-test
policy-test: ## run the example policy's tests (vigil policy test examples/policy_test.yaml)
	$(GO) run ./cmd/vigil policy test -v examples/policy_test.yaml
.PHONY: test-oversight
test-oversight: test-deps ## human oversight: stores, service, two replicas on PostgreSQL, the console in Chromium
	$(GO) test -race -count=1 ./internal/oversight/ ./internal/notify/ ./internal/store/... && \
	$(GO) test -race -count=1 -run 'Approvals|KillSwitch|Oversight|Console|Webhooks|TwoReplicas|InChromium' ./cmd/vigil/

.PHONY: screenshots
screenshots: test-deps ## run the Chromium tests (console, held MCP call) and keep their screenshots in ./tmp/screenshots
	mkdir -p tmp/screenshots && VIGIL_TEST_ARTIFACTS=$(CURDIR)/tmp/screenshots $(GO) test -count=1 -run InChromium -v ./cmd/vigil/

.PHONY: loadtest
loadtest: build ## load-test the LLM gateway: Vigil vs the fake provider directly (throughput, added latency, RSS)
	bin/vigil bench --concurrency 1,32 --duration 30s

.PHONY: soak
soak: build ## keep the LLM gateway under load for 5 minutes and report its memory (RSS) over time
	bin/vigil bench --concurrency 32 --duration 5m --rss-every 10s --skip-direct

.PHONY: bench-llm
bench-llm: ## run the LLM gateway's Go benchmarks (parsing, SSE, the proxy alone)
	$(GO) test -run '^$$' -bench 'Parse|SSE|Proxy' -benchmem ./internal/llmproxy/

.PHONY: fuzz-llm
fuzz-llm: ## fuzz OpenAI/Anthropic request parsing and SSE parsing (30s each)
	for f in FuzzParseChatRequest FuzzParseMessagesRequest FuzzSSEReader; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s ./internal/llmproxy/ || exit 1; done
.PHONY: bench-ledger
bench-ledger: ## ledger benchmarks: durable appends (SQLite, PostgreSQL), proof serving, vigil verify of 1M entries
	$(GO) test ./internal/store/sqlite ./internal/store/postgres -run '^$$' -bench LedgerAppend -benchtime 30000x -count 3
	$(GO) test ./internal/api -run '^$$' -bench ServeInclusionProof -benchtime 5000x -count 3
	$(GO) test ./cmd/vigil -run '^$$' -bench Verify -benchtime 1x -count 3 -timeout 60m

.PHONY: test-mcp
test-mcp: test-deps ## run the MCP gateway tests (real servers and clients from test/mcp)
	$(GO) test -race -count=1 ./internal/mcpproxy/... ./internal/config/ ./internal/api/
	$(GO) test -race -count=1 -run 'MCP|ExampleConfig' ./cmd/vigil/

.PHONY: bench-mcp
bench-mcp: ## measure the latency a tools/call gains through the MCP gateway
	$(GO) test -run '^$$' -bench BenchmarkToolCall -benchtime 3000x -count 3 ./internal/mcpproxy/

.PHONY: fuzz-mcp
fuzz-mcp: ## fuzz the MCP gateway's message handling (30s per target)
	@for f in FuzzReadBody FuzzSSEReader FuzzEventIDAndProgress FuzzPost; do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s ./internal/mcpproxy/ || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzDefine$$' -fuzztime 30s ./internal/mcpproxy/pins/

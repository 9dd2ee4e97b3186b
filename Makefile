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
test: ## run the whole test suite with the race detector (what CI runs)
	$(GO) test -race -count=1 ./...

.PHONY: vet
vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

.PHONY: bench-ledger
bench-ledger: ## ledger benchmarks: durable appends (SQLite, PostgreSQL), proof serving, vigil verify of 1M entries
	$(GO) test ./internal/store/sqlite ./internal/store/postgres -run '^$$' -bench LedgerAppend -benchtime 30000x -count 3
	$(GO) test ./internal/api -run '^$$' -bench ServeInclusionProof -benchtime 5000x -count 3
	$(GO) test ./cmd/vigil -run '^$$' -bench Verify -benchtime 1x -count 3 -timeout 60m

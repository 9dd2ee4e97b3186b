package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNodeSDKs runs test/sdk/sdk.test.mjs (the official openai and @anthropic-ai/sdk
// npm packages) against the gateway, then checks what reached the provider and the
// ledger. Without node or test/sdk/node_modules it skips locally and fails in CI (CI
// set), where scripts/test-deps.sh installs them.
func TestNodeSDKs(t *testing.T) {
	dir, err := filepath.Abs("../../test/sdk")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node or %s/node_modules is missing (node: %v); scripts/test-deps.sh runs npm ci there", dir, err)
		}
		t.Skip("node or test/sdk/node_modules missing; run scripts/test-deps.sh (CI fails here instead)")
	}
	r := newLLMRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "sdk.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VIGIL_URL="+r.url, "VIGIL_AGENT_KEY="+r.agentKey, "NODE_NO_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test failed: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", out)
	if got := r.received(); strings.Contains(got, "node.user@example.org") || !strings.Contains(got, "<EMAIL_ADDRESS_") {
		t.Errorf("the provider received the address unmasked (or no masked one): %s", got)
	}
	for _, q := range r.fake.Requests() {
		if strings.Contains(q.Header["Authorization"]+q.Header["X-Api-Key"], r.agentKey) {
			t.Errorf("the agent's key reached the provider on %s", q.Path)
		}
	}
	envs := ledgerEntries(t, r.m)
	reqs, resps := ofType(envs, "model.request"), ofType(envs, "model.response")
	if len(reqs) < 14 || len(resps) < 12 {
		t.Errorf("ledger has %d requests and %d responses; want every SDK call recorded", len(reqs), len(resps))
	}
	for _, e := range resps {
		if e.Attrs["status"] == "200" && e.Body == nil {
			t.Errorf("response %s has no body in the ledger", e.ID)
		}
	}
}

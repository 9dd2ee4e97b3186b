package postgres_test

import (
	"context"
	"testing"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// TestLimitHoldsAcrossReplicas runs two policy engines, each with its own connection
// pool to one database, as two replicas would: calls admitted by one count toward the
// other's limit once both have flushed.
func TestLimitHoldsAcrossReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	p, err := policy.Compile("p.yaml", []byte("version: 1\ndefault: allow\nlimits:\n  - id: rate\n    per: system\n    calls_per_hour: 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	var replicas []*policy.Engine
	for range 2 {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		e := policy.New(policy.Options{Usage: db.Usage()})
		if err := e.Activate(ctx, p, "test"); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, e)
	}
	call := func(e *policy.Engine, agent string) vigil.Decision {
		d, err := e.Decide(ctx, vigil.Action{Kind: vigil.ModelCall, Model: &vigil.Model{Name: "m"},
			Actor: vigil.Actor{Kind: vigil.ActorAgent, ID: agent, Name: agent, SystemID: "sys-1", SystemName: "desk"}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Six calls on each replica, by different agents of one system.
	for range 6 {
		for i, e := range replicas {
			if d := call(e, []string{"a", "b"}[i]); d.Effect != vigil.Allow {
				t.Fatalf("replica %d denied before either reached 10: %s", i, d.Message)
			}
		}
	}
	for _, e := range replicas {
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The first replica flushed before the second wrote; its next flush reads 12.
	if err := replicas[0].Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, e := range replicas {
		if d := call(e, "c"); d.Limit != "rate/calls_per_hour" {
			t.Errorf("replica %d after 12 calls in all: %s %q, want the system's hourly limit", i, d.Effect, d.Limit)
		}
	}
}

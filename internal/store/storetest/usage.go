package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/policy"
)

func testUsage(t *testing.T, st Stores) {
	ctx := context.Background()
	s := st.Usage
	minute := now.Truncate(time.Minute)
	day := now.Truncate(24 * time.Hour)
	key := func(subject, metric string, w time.Duration, start time.Time) policy.UsageKey {
		return policy.UsageKey{Subject: subject, Metric: metric, Window: w, Start: start}
	}
	calls := key("agent:a1", "calls", time.Minute, minute)

	t.Run("AddThenRead", func(t *testing.T) {
		deltas := []policy.UsageDelta{
			{Key: calls, N: 2},
			{Key: key("agent:a1", "calls", 24*time.Hour, day), N: 5},
			{Key: calls, N: 3}, // a repeated key adds up
			{Key: key("agent:a1", "cost", 24*time.Hour, day), N: 1_250_000},
			{Key: key("system:s1", "calls", time.Minute, minute), N: 7},
		}
		if err := s.AddUsage(ctx, deltas); err != nil {
			t.Fatalf("AddUsage: %v", err)
		}
		keys := []policy.UsageKey{
			key("system:s1", "calls", time.Minute, minute),
			calls,
			key("agent:a1", "calls", time.Minute, minute.Add(-time.Minute)), // another window: never added to
			key("agent:a1", "tool_calls", time.Minute, minute),              // another metric
			key("agent:a2", "calls", time.Minute, minute),                   // another subject
			key("agent:a1", "calls", 24*time.Hour, day),
			key("agent:a1", "cost", 24*time.Hour, day),
		}
		got, err := s.ReadUsage(ctx, keys)
		if err != nil {
			t.Fatalf("ReadUsage: %v", err)
		}
		if diff := cmp.Diff([]int64{7, 5, 0, 0, 0, 5, 1_250_000}, got); diff != "" {
			t.Errorf("ReadUsage mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("NegativeDeltaSubtracts", func(t *testing.T) {
		k := key("agent:neg", "calls", time.Hour, now.Truncate(time.Hour))
		if err := s.AddUsage(ctx, []policy.UsageDelta{{Key: k, N: 4}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddUsage(ctx, []policy.UsageDelta{{Key: k, N: -1}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadUsage(ctx, []policy.UsageKey{k})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != 3 {
			t.Errorf("after +4 and -1: got %d, want 3", got[0])
		}
	})

	t.Run("EmptyCalls", func(t *testing.T) {
		if err := s.AddUsage(ctx, nil); err != nil {
			t.Errorf("AddUsage(nil): %v", err)
		}
		got, err := s.ReadUsage(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("ReadUsage(nil) = %v, %v; want [], nil", got, err)
		}
	})

	t.Run("ConcurrentAddsAllCount", func(t *testing.T) {
		k := key("agent:busy", "calls", time.Minute, minute)
		const workers, each = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					errs <- s.AddUsage(ctx, []policy.UsageDelta{{Key: k, N: 1}, {Key: calls, N: 0}})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("AddUsage: %v", err)
			}
		}
		got, err := s.ReadUsage(ctx, []policy.UsageKey{k})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != workers*each {
			t.Errorf("after %d concurrent adds of 1: got %d", workers*each, got[0])
		}
	})

	t.Run("Prune", func(t *testing.T) {
		old := key("agent:old", "calls", time.Hour, now.Truncate(time.Hour).Add(-3*time.Hour))
		ending := key("agent:old", "calls", time.Hour, now.Truncate(time.Hour).Add(-time.Hour))
		current := key("agent:old", "calls", time.Hour, now.Truncate(time.Hour))
		if err := s.AddUsage(ctx, []policy.UsageDelta{{Key: old, N: 1}, {Key: ending, N: 1}, {Key: current, N: 1}}); err != nil {
			t.Fatal(err)
		}
		// Windows that ended at or before the cut go; "ending" ends exactly at it.
		n, err := s.PruneUsage(ctx, now.Truncate(time.Hour))
		if err != nil {
			t.Fatalf("PruneUsage: %v", err)
		}
		if n < 2 {
			t.Errorf("PruneUsage deleted %d counters, want at least the 2 that ended", n)
		}
		got, err := s.ReadUsage(ctx, []policy.UsageKey{old, ending, current})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{0, 0, 1}, got); diff != "" {
			t.Errorf("after PruneUsage (-want +got):\n%s", diff)
		}
	})
}

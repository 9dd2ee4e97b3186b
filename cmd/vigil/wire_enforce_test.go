package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// usageLog is an aims.UsageReporter that keeps what it is told.
type usageLog struct {
	mu  sync.Mutex
	got []aims.Observation
}

func (u *usageLog) ReportUsage(_ context.Context, o aims.Observation) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, o)
	return nil
}

// The inventory observer adds uses up and reports each key with its exact count,
// first and last time, including what is pending when Vigil stops.
func TestAIMSObserverAggregates(t *testing.T) {
	m := &Main{Log: slog.New(slog.DiscardHandler)}
	bg, stop := context.WithCancel(context.Background())
	rep := &usageLog{}
	o := newAIMSObserver(m, bg, rep)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	bot := vigil.Actor{ID: "a1", SystemID: "s1"}
	for i, model := range []string{"gpt-a", "gpt-a", "gpt-b", "gpt-a"} {
		o.Observe(context.Background(), vigil.Action{Actor: bot, Time: t0.Add(time.Duration(i) * time.Second), Model: &vigil.Model{Provider: "p", Name: model}})
	}
	stop()
	m.wg.Wait()

	totals := map[string]int64{}
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, ob := range rep.got {
		totals[ob.Model] += ob.Count
		if f, ok := first[ob.Model]; !ok || ob.At.Before(f) {
			first[ob.Model] = ob.At
		}
		if ob.At.After(last[ob.Model]) {
			last[ob.Model] = ob.At
		}
	}
	if diff := cmp.Diff(map[string]int64{"gpt-a": 3, "gpt-b": 1}, totals); diff != "" {
		t.Errorf("uses reported (-want +got):\n%s", diff)
	}
	if !first["gpt-a"].Equal(t0) || !last["gpt-a"].Equal(t0.Add(3*time.Second)) || !first["gpt-b"].Equal(t0.Add(2*time.Second)) {
		t.Errorf("first/last seen = %v / %v, want gpt-a from t0 to t0+3s and gpt-b at t0+2s", first, last)
	}
	if len(rep.got) != 3 {
		t.Errorf("%d reports, want 3 (gpt-a: first and the rest; gpt-b: one)", len(rep.got))
	}
}

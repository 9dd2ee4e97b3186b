package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func testAIMS(t *testing.T, st Stores) {
	ctx := context.Background()
	s := st.AIMS

	rec := aims.StoredRecord{Kind: "risk", ID: "R-1", SystemID: "sys-1", Data: []byte(`{"id":"R-1"}`), UpdatedAt: now, UpdatedBy: "token:ci"}
	t.Run("RecordRoundTrip", func(t *testing.T) {
		if err := s.CreateRecord(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.Record(ctx, "risk", "R-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("Record() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrConflictOnCreate", func(t *testing.T) {
		if err := s.CreateRecord(ctx, rec); !errors.Is(err, vigil.ErrConflict) {
			t.Errorf("CreateRecord(existing) = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := s.Record(ctx, "risk", "nope"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("Record(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.Record(ctx, "policy", "R-1"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("Record(other kind, same id) = %v, want ErrNotFound", err)
		}
		if err := s.DeleteRecord(ctx, "risk", "nope"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("DeleteRecord(unknown) = %v, want ErrNotFound", err)
		}
	})
	t.Run("PutReplacesAndListOrders", func(t *testing.T) {
		upd := rec
		upd.Data, upd.UpdatedAt, upd.SystemID = []byte(`{"id":"R-1","v":2}`), now.Add(time.Minute), ""
		if err := s.PutRecord(ctx, upd); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"R-3", "R-10", "R-2"} {
			if err := s.PutRecord(ctx, aims.StoredRecord{Kind: "risk", ID: id, Data: []byte(`{}`), UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutRecord(ctx, aims.StoredRecord{Kind: "policy", ID: "P", Data: []byte(`{}`), UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListRecords(ctx, "risk")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if diff := cmp.Diff([]string{"R-1", "R-10", "R-2", "R-3"}, ids); diff != "" {
			t.Errorf("ListRecords ids (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(upd, list[0]); diff != "" {
			t.Errorf("after PutRecord (-want +got):\n%s", diff)
		}
		if err := s.DeleteRecord(ctx, "risk", "R-2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Record(ctx, "risk", "R-2"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("deleted record still there: %v", err)
		}
	})
	t.Run("UsageAggregatesWithoutLosingCounts", func(t *testing.T) {
		key := aims.UsageKey{AgentID: "a1", SystemID: "s1", Provider: "openai", Model: "gpt-4o"}
		const writers, each = 8, 20
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					at := now.Add(time.Duration(w*each+i) * time.Second)
					if err := s.AddUsage(ctx, key, at, 1); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		other := aims.UsageKey{Source: "key:vk_unknown", Model: "gpt-4o"}
		if err := s.AddUsage(ctx, other, now, 3); err != nil {
			t.Fatal(err)
		}
		got, err := s.Usage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []aims.UsageAggregate{
			{UsageKey: other, FirstSeen: now, LastSeen: now, Count: 3},
			{UsageKey: key, FirstSeen: now, LastSeen: now.Add((writers*each - 1) * time.Second), Count: writers * each},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Usage (-want +got):\n%s", diff)
		}
	})
	t.Run("HealthHistoryWindow", func(t *testing.T) {
		rs := []aims.HealthResult{
			{Check: "b", At: now, Pass: true, Detail: "ok"},
			{Check: "a", At: now, Pass: false, Detail: "bad"},
			{Check: "a", At: now.Add(time.Hour), Pass: true, Detail: "ok later"},
		}
		if err := s.AppendHealth(ctx, rs); err != nil {
			t.Fatal(err)
		}
		got, err := s.HealthHistory(ctx, now, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]aims.HealthResult{rs[1], rs[0]}, got); diff != "" {
			t.Errorf("HealthHistory [now, now+1h) (-want +got):\n%s", diff)
		}
	})
	t.Run("VerificationsWindow", func(t *testing.T) {
		v1 := aims.Verification{At: now, OK: true, Size: 10, Checkpoint: 9, Summary: "intact", Method: "test"}
		v2 := aims.Verification{At: now.Add(2 * time.Hour), OK: false, Size: 12, Checkpoint: 12, Summary: "index 3: bad", Method: "test"}
		for _, v := range []aims.Verification{v1, v2} {
			if err := s.AppendVerification(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Verifications(ctx, now.Add(-time.Hour), now.Add(3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]aims.Verification{v1, v2}, got); diff != "" {
			t.Errorf("Verifications (-want +got):\n%s", diff)
		}
		got, err = s.Verifications(ctx, now.Add(time.Hour), now.Add(3*time.Hour))
		if err != nil || len(got) != 1 || got[0].OK {
			t.Errorf("Verifications(later window) = %v, %v; want only the failed one", got, err)
		}
	})
}

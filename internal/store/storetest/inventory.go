package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// now is a fixed, microsecond-truncated time: both drivers keep microseconds.
var now = time.Date(2026, 11, 26, 12, 0, 0, 123456000, time.UTC)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func testInventory(t *testing.T, st Stores) {
	ctx := context.Background()
	s := st.Inventory

	sys := inventory.System{ID: newID(), Name: "support-bot", Purpose: "answers tickets", Owner: "alice",
		Lifecycle: "operation", Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateSystem(ctx, sys); err != nil {
		t.Fatalf("CreateSystem: %v", err)
	}
	t.Run("SystemRoundTrip", func(t *testing.T) {
		got, err := s.System(ctx, sys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sys, got); diff != "" {
			t.Errorf("System() mismatch (-want +got):\n%s", diff)
		}
		got, err = s.SystemByName(ctx, "support-bot")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sys, got); diff != "" {
			t.Errorf("SystemByName() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrSystemNotFound", func(t *testing.T) {
		if _, err := s.System(ctx, newID()); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("System(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.SystemByName(ctx, "nope"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("SystemByName(unknown) = %v, want ErrNotFound", err)
		}
		err := s.UpdateSystem(ctx, inventory.System{ID: newID(), Lifecycle: "operation", Status: inventory.Active, UpdatedAt: now})
		if !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("UpdateSystem(unknown) = %v, want ErrNotFound", err)
		}
	})
	t.Run("ErrSystemDuplicateName", func(t *testing.T) {
		dup := sys
		dup.ID = newID()
		if err := s.CreateSystem(ctx, dup); !errors.Is(err, vigil.ErrConflict) {
			t.Errorf("CreateSystem(duplicate name) = %v, want ErrConflict", err)
		}
	})
	t.Run("UpdateSystem", func(t *testing.T) {
		upd := sys
		at := now.Add(time.Minute)
		upd.Status, upd.SuspendedReason, upd.SuspendedBy, upd.SuspendedAt, upd.UpdatedAt = inventory.Suspended, "leak", "user:bob", &at, at
		upd.Owner = "carol"
		if err := s.UpdateSystem(ctx, upd); err != nil {
			t.Fatal(err)
		}
		got, err := s.System(ctx, sys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(upd, got); diff != "" {
			t.Errorf("after UpdateSystem (-want +got):\n%s", diff)
		}
		if err := s.UpdateSystem(ctx, sys); err != nil { // restore
			t.Fatal(err)
		}
	})

	other := inventory.System{ID: newID(), Name: "analytics", Lifecycle: "development", Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateSystem(ctx, other); err != nil {
		t.Fatal(err)
	}
	t.Run("ListSystemsByName", func(t *testing.T) {
		got, err := s.ListSystems(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "analytics" || got[1].Name != "support-bot" {
			t.Errorf("ListSystems() = %+v, want analytics then support-bot", got)
		}
	})

	a := inventory.Agent{ID: newID(), Name: "triage", SystemID: sys.ID, Owner: "alice",
		Labels: map[string]string{"team": "cx", "env": "prod"}, Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}
	b := inventory.Agent{ID: newID(), Name: "reporter", SystemID: other.ID, Labels: map[string]string{}, Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAgent(ctx, b); err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}
	t.Run("AgentRoundTrip", func(t *testing.T) {
		got, err := s.Agent(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("Agent() mismatch (-want +got):\n%s", diff)
		}
		got, err = s.AgentByName(ctx, "triage")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("AgentByName() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("NilLabelsStoredEmpty", func(t *testing.T) {
		c := inventory.Agent{ID: newID(), Name: "nolabels", SystemID: other.ID, Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateAgent(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Agent(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Labels == nil || len(got.Labels) != 0 {
			t.Errorf("Labels = %#v, want empty non-nil map", got.Labels)
		}
	})
	t.Run("ErrAgentDuplicateName", func(t *testing.T) {
		dup := a
		dup.ID = newID()
		dup.SystemID = other.ID
		if err := s.CreateAgent(ctx, dup); !errors.Is(err, vigil.ErrConflict) {
			t.Errorf("CreateAgent(duplicate name) = %v, want ErrConflict", err)
		}
	})
	t.Run("ErrAgentUnknownSystem", func(t *testing.T) {
		bad := inventory.Agent{ID: newID(), Name: "orphan", SystemID: newID(), Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateAgent(ctx, bad); err == nil {
			t.Error("CreateAgent with unknown system succeeded, want a foreign-key error")
		}
	})
	t.Run("ErrAgentNotFound", func(t *testing.T) {
		if _, err := s.Agent(ctx, newID()); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("Agent(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.AgentByName(ctx, "nobody"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("AgentByName(unknown) = %v, want ErrNotFound", err)
		}
		err := s.UpdateAgent(ctx, inventory.Agent{ID: newID(), Status: inventory.Active, UpdatedAt: now})
		if !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("UpdateAgent(unknown) = %v, want ErrNotFound", err)
		}
	})
	t.Run("UpdateAgentStatus", func(t *testing.T) {
		upd := a
		at := now.Add(time.Hour)
		upd.Status, upd.SuspendedReason, upd.SuspendedBy, upd.SuspendedAt, upd.UpdatedAt = inventory.Suspended, "runaway loop", "token:ops", &at, at
		upd.Labels = map[string]string{"team": "cx"}
		if err := s.UpdateAgent(ctx, upd); err != nil {
			t.Fatal(err)
		}
		got, err := s.Agent(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(upd, got); diff != "" {
			t.Errorf("after UpdateAgent (-want +got):\n%s", diff)
		}
	})
	t.Run("ListAgents", func(t *testing.T) {
		all, err := s.ListAgents(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range all {
			names = append(names, x.Name)
		}
		if diff := cmp.Diff([]string{"nolabels", "reporter", "triage"}, names); diff != "" {
			t.Errorf("ListAgents(\"\") names (-want +got):\n%s", diff)
		}
		mine, err := s.ListAgents(ctx, sys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) != 1 || mine[0].ID != a.ID {
			t.Errorf("ListAgents(system) = %+v, want only triage", mine)
		}
		none, err := s.ListAgents(ctx, newID())
		if err != nil {
			t.Fatal(err)
		}
		if none == nil || len(none) != 0 {
			t.Errorf("ListAgents(unknown system) = %#v, want empty non-nil slice", none)
		}
	})
}

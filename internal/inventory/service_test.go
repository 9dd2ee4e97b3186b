package inventory_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

type recorder struct {
	events []vigil.Event
	err    error
}

func (r *recorder) Record(_ context.Context, e vigil.Event) (vigil.Receipt, error) {
	if r.err != nil {
		return vigil.Receipt{}, r.err
	}
	r.events = append(r.events, e)
	return vigil.Receipt{Index: int64(len(r.events))}, nil
}

func newService(t *testing.T) (*inventory.Service, *recorder) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rec := &recorder{}
	return &inventory.Service{Store: db.Inventory(), Ledger: rec}, rec
}

var admin = vigil.Actor{Kind: vigil.ActorToken, Name: "ops", Roles: []vigil.Role{vigil.RoleAdmin}}

func TestCreateAgentRegistersUnknownSystemIncomplete(t *testing.T) {
	s, rec := newService(t)
	ctx := context.Background()
	a, sys, created, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "bot", System: "billing", Labels: map[string]string{"env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if !created || sys.Name != "billing" || sys.Complete() || a.SystemID != sys.ID || a.Status != inventory.Active {
		t.Errorf("agent %+v, system %+v, created %v", a, sys, created)
	}
	if len(rec.events) != 2 || rec.events[0].Type != vigil.EventSystemCreated || rec.events[1].Type != vigil.EventAgentCreated || rec.events[1].Actor != "token:ops" {
		t.Errorf("ledger events = %+v", rec.events)
	}
	// A second agent of the same system doesn't register it again.
	if _, _, created, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "bot2", System: sys.ID}); err != nil || created {
		t.Errorf("second agent: created %v, %v", created, err)
	}
	if _, _, _, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "bot", System: "billing"}); !errors.Is(err, vigil.ErrConflict) {
		t.Errorf("duplicate agent name = %v, want ErrConflict", err)
	}
}

func TestValidation(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"bad agent name", func() error {
			_, _, _, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "Bad Name", System: "x"})
			return err
		}, "agent name"},
		{"no system", func() error { _, _, _, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "ok"}); return err }, "system is required"},
		{"long label", func() error {
			_, _, _, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "ok", System: "x", Labels: map[string]string{"k": strings.Repeat("v", 300)}})
			return err
		}, "label"},
		{"bad system name", func() error { _, err := s.CreateSystem(ctx, admin, inventory.SystemInput{Name: "-x"}); return err }, "system name"},
		{"bad lifecycle", func() error {
			_, err := s.CreateSystem(ctx, admin, inventory.SystemInput{Name: "x", Lifecycle: "someday"})
			return err
		}, "lifecycle"},
	}
	for _, c := range cases {
		err := c.run()
		if vigil.ErrorCode(err) != vigil.EINVALID || !strings.Contains(vigil.ErrorMessage(err), c.want) {
			t.Errorf("%s: %v; want invalid_request mentioning %q", c.name, err, c.want)
		}
	}
}

func TestKillSwitchNeedsAReasonAndTellsListeners(t *testing.T) {
	s, rec := newService(t)
	ctx := context.Background()
	var changed []string
	s.OnChange = func(agentID, systemID string) { changed = append(changed, agentID+"|"+systemID) }
	a, sys, _, err := s.CreateAgent(ctx, admin, inventory.AgentInput{Name: "bot", System: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAgentStatus(ctx, admin, "bot", inventory.Suspended, " "); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("suspend without reason = %v", err)
	}
	got, err := s.SetAgentStatus(ctx, admin, "bot", inventory.Suspended, "loop")
	if err != nil || got.Status != inventory.Suspended || got.SuspendedBy != "token:ops" || got.SuspendedReason != "loop" || got.SuspendedAt == nil {
		t.Fatalf("suspended agent = %+v, %v", got, err)
	}
	got, err = s.SetAgentStatus(ctx, admin, a.ID, inventory.Active, "")
	if err != nil || got.Status != inventory.Active || got.SuspendedAt != nil || got.SuspendedReason != "" {
		t.Fatalf("resumed agent = %+v, %v", got, err)
	}
	if _, err := s.SetSystemStatus(ctx, admin, "billing", inventory.Suspended, "breach"); err != nil {
		t.Fatal(err)
	}
	if len(changed) != 3 || changed[0] != a.ID+"|" || changed[2] != "|"+sys.ID {
		t.Errorf("OnChange calls = %v", changed)
	}
	last := rec.events[len(rec.events)-1]
	if last.Type != vigil.EventAgentSuspended || last.Attrs["scope"] != "system" || string(last.Body) != "breach" {
		t.Errorf("last ledger event = %+v", last)
	}
	if _, err := s.SetAgentStatus(ctx, admin, "nobody", inventory.Suspended, "x"); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("unknown agent = %v", err)
	}
}

func TestLedgerFailureFailsTheChange(t *testing.T) {
	s, rec := newService(t)
	rec.err = errors.New("disk full")
	if _, err := s.CreateSystem(context.Background(), admin, inventory.SystemInput{Name: "x"}); err == nil || !strings.Contains(err.Error(), "couldn't record") {
		t.Errorf("CreateSystem with a failing ledger = %v", err)
	}
}

// Package storetest is the behaviour suite every storage driver must pass. Each
// domain's contract (the MUSTs on its Store interface) is checked here once, and the
// SQLite and PostgreSQL drivers run it from their own tests.
package storetest

import (
	"testing"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/policy"
)

// Stores is one driver's implementation of every domain Store, over one fresh,
// empty database.
type Stores struct {
	Inventory inventory.Store
	Auth      auth.Store
	Ledger    ledger.Store
	PIIVault  pii.Vault
	AIMS      aims.Store
	Usage     policy.UsageStore
	Oversight OversightStores
	// Attacker has raw access to the same database, for the adversarial suite.
	Attacker Attacker
	// MCPPins are the MCP gateway's pinned tool definitions.
	MCPPins pins.Store
}

// Run runs the whole suite. open MUST return stores over a new empty database each
// time it is called, closed when the test ends.
func Run(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("Inventory", func(t *testing.T) { testInventory(t, open(t)) })
	t.Run("Auth", func(t *testing.T) { testAuth(t, open(t)) })
	t.Run("Ledger", func(t *testing.T) { testLedger(t, open(t)) })
	t.Run("PIIVault", func(t *testing.T) { testPIIVault(t, open(t)) })
	t.Run("AIMS", func(t *testing.T) { testAIMS(t, open(t)) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, open(t)) })
	t.Run("Oversight", func(t *testing.T) { testOversight(t, open(t).Oversight) })
	t.Run("LedgerTampering", func(t *testing.T) { testLedgerTampering(t, open) })
	t.Run("MCPPins", func(t *testing.T) { testMCPPins(t, open(t)) })
}

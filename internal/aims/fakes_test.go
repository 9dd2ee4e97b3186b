package aims_test

import (
	"context"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/inventory"
)

type piiModes map[string]string

func (p piiModes) MaskingByRoute(context.Context) (map[string]string, error) { return p, nil }

type policyState struct{ s aims.PolicyState }

func (p policyState) PolicyState(context.Context) (aims.PolicyState, error) { return p.s, nil }

type metrics map[string]float64

func (m metrics) Metrics(context.Context) (map[string]float64, error) { return m, nil }

func inventoryAgent(name, system string) inventory.AgentInput {
	return inventory.AgentInput{Name: name, System: system, Owner: "ops"}
}

package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Evaluate decides a, given what its agent and system have used (u; nil means
// nothing). It is pure — no I/O, no clock except for Decision.Elapsed and for `now`
// when a.Time is zero — safe for concurrent use, and never panics: an internal failure
// denies.
//
// Limits are checked first; a reached limit denies with Decision.Limit set and no rule
// is evaluated. Otherwise every rule whose filter passes and whose condition is true
// matches; a rule whose condition fails to evaluate matches as deny (or is skipped,
// with on_error: skip) and is listed in Decision.Errors. Deny beats require_approval
// beats allow; with no match the default decides. The first matching rule with the
// winning effect gives the message.
func (p *Policy) Evaluate(a *vigil.Action, u *Usage) (d vigil.Decision) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			d = vigil.Decision{Effect: vigil.Deny, Message: "denied: the policy engine failed on this action",
				Rules: []string{}, Policy: p.version,
				Errors: []vigil.RuleError{{Error: fmt.Sprintf("internal error: %v", r)}}}
		}
		d.Elapsed = time.Since(start)
	}()
	if u == nil {
		u = &noUsage
	}
	var x attrs
	x.load(a)
	if isCall(a.Kind) {
		if d, hit := p.checkLimits(a, &x, u); hit {
			return d
		}
	}
	return p.evaluateRules(a, &x, u)
}

// noUsage stands in for a nil *Usage. Evaluation only reads usage, so it is never
// written.
var noUsage Usage

func (p *Policy) checkLimits(a *vigil.Action, x *attrs, u *Usage) (vigil.Decision, bool) {
	for i := range p.limits {
		l := &p.limits[i]
		if !l.filter.match(x) {
			continue
		}
		c := &u.Agent
		if l.perSystem {
			c = &u.System
		}
		for j := range l.bounds {
			b := &l.bounds[j]
			if b.metric == mToolCalls && a.Kind != vigil.ToolCall {
				continue
			}
			if *c.window(b.metric).at(b.window) >= b.max {
				return vigil.Decision{Effect: vigil.Deny, Message: b.message, Rules: []string{},
					Policy: p.version, Limit: b.name}, true
			}
		}
	}
	return vigil.Decision{}, false
}

func (p *Policy) evaluateRules(a *vigil.Action, x *attrs, u *Usage) vigil.Decision {
	now := a.Time
	if now.IsZero() {
		now = time.Now()
	}
	var (
		act      *activation
		buf      [16]int32
		matched  = buf[:0] // indices of matching rules
		errs     []vigil.RuleError
		best     vigil.Effect
		decider  = -1
		failedAt = -1 // index into errs of the deciding rule's error, if it failed
	)
	for _, i := range p.byKind[x.kind] {
		r := &p.rules[i]
		if !r.filter.match(x) {
			continue
		}
		eff := r.effect
		failed := -1
		if r.prg != nil {
			if act == nil {
				act = newActivation(a, u, now)
			}
			ok, err := r.eval(act)
			if err != nil {
				errs = append(errs, vigil.RuleError{Rule: r.id, Error: err.Error(), Skipped: r.skipOnError})
				if r.skipOnError {
					continue
				}
				eff, failed = vigil.Deny, len(errs)-1
			} else if !ok {
				continue
			}
		}
		matched = append(matched, i)
		if eff.Precedence() > best.Precedence() {
			best, decider, failedAt = eff, int(i), failed
		}
	}
	if act != nil {
		act.free()
	}
	d := vigil.Decision{Policy: p.version, Errors: errs}
	if decider < 0 {
		d.Effect, d.Message, d.Rules = p.def, p.defMsg, []string{}
		return d
	}
	d.Effect = best
	if failedAt >= 0 {
		d.Message = fmt.Sprintf("denied: policy rule %s could not be evaluated: %s", p.rules[decider].id, errs[failedAt].Error)
	} else {
		d.Message = p.rules[decider].message
	}
	if len(matched) == 1 {
		i := matched[0]
		d.Rules = p.ids[i : i+1 : i+1] // shares the policy's array; the cap keeps appends off it
	} else {
		d.Rules = make([]string, len(matched))
		for j, i := range matched {
			d.Rules[j] = p.ids[i]
		}
	}
	if best == vigil.RequireApproval {
		d.Approval = p.mergeApprovals(matched)
	}
	return d
}

func (r *rule) eval(act *activation) (bool, error) {
	out, _, err := r.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("the condition gave %s, not true or false", out.Type().TypeName())
	}
	return bool(b), nil
}

// mergeApprovals combines the approval specs of the matched require_approval rules in
// the strictest way: an approver must satisfy every rule, so roles are intersected
// (an empty intersection leaves admins, who hold every role); the most approvers and
// the shortest timeout win; every named training is required.
func (p *Policy) mergeApprovals(matched []int32) *vigil.ApprovalSpec {
	var out *vigil.ApprovalSpec
	shared := false
	for _, i := range matched {
		r := &p.rules[i]
		if r.effect != vigil.RequireApproval || r.approval == nil {
			continue
		}
		s := r.approval
		if out == nil {
			// Roles is shared with the policy until a second spec narrows it; the clip
			// makes an append by the caller copy instead of writing into the policy.
			out = &vigil.ApprovalSpec{Roles: slices.Clip(s.Roles), Approvers: s.Approvers, Timeout: s.Timeout, RequireTraining: s.RequireTraining}
			shared = true
			continue
		}
		if shared {
			out.Roles, shared = slices.Clone(out.Roles), false
		}
		out.Roles = slices.DeleteFunc(out.Roles, func(x vigil.Role) bool { return !slices.Contains(s.Roles, x) })
		out.Approvers = max(out.Approvers, s.Approvers)
		out.Timeout = min(out.Timeout, s.Timeout)
		// Every rule's training is required: the names are joined with commas.
		if t := s.RequireTraining; t != "" && !slices.Contains(strings.Split(out.RequireTraining, ","), t) {
			if out.RequireTraining != "" {
				t = out.RequireTraining + "," + t
			}
			out.RequireTraining = t
		}
	}
	if out != nil && len(out.Roles) == 0 {
		out.Roles = []vigil.Role{vigil.RoleAdmin}
	}
	return out
}

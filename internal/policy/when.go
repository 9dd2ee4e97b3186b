package policy

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"gopkg.in/yaml.v3"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// guardFields are the attributes whose equality with a string literal, when it is a
// top-level conjunct of a condition, becomes a filter check: the condition cannot be
// true unless the check passes, and the check costs a string comparison. These
// attributes never fail to evaluate, so lifting them never hides an error.
var guardFields = map[string]fieldID{
	"agent.id":       fAgentID,
	"agent.name":     fAgentName,
	"agent.system":   fSystem,
	"model.provider": fProvider,
	"model.name":     fModel,
	"tool.server":    fServer,
	"tool.name":      fTool,
	"resource.uri":   fURI,
	"resource.name":  fPrompt,
}

const kindPath = "action.kind"

// compileWhen type-checks expr against the schema, reports problems at their place in
// the file, and sets r's program, guards and usesUsage.
func (d *decoder) compileWhen(n *yaml.Node, expr string, r *rule) {
	env := theSchema().env
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			d.celError(n, e.Location.Line(), e.Location.Column(), e.Message)
		}
		return
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		d.errorf(n, "when must be true or false, but this condition gives %s", t)
		return
	}
	if !d.analyse(n, ast, r) {
		return
	}
	// The lifted guards are checked before the condition runs, so remove them from it
	// and fold what is left; a condition made only of guards needs no program at all.
	ast, iss = theSchema().optimizer.Optimize(env, ast)
	if iss != nil && iss.Err() != nil {
		d.errorf(n, "couldn't optimise when: %v", iss.Err())
		return
	}
	if e := ast.NativeRep().Expr(); e.Kind() == celast.LiteralKind && e.AsLiteral() == types.True {
		return
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		d.errorf(n, "couldn't compile when: %v", err)
		return
	}
	r.prg = prg
}

func (d *decoder) celError(n *yaml.Node, line, col int, msg string) {
	msg = strings.TrimSuffix(msg, " (in container '')")
	fl, fc, exact := d.position(n, line, col)
	if !exact {
		msg = fmt.Sprintf("%s (at line %d, column %d of the condition)", msg, line, col+1)
	}
	d.errorAt(fl, fc, "when: %s", msg)
}

// analyse walks the checked condition: it refuses comparisons of action.kind with a
// kind that does not exist (they would silently never match), notes whether usage is
// read, and lifts guards into r.filter. It returns false after reporting a problem.
func (d *decoder) analyse(n *yaml.Node, a *cel.Ast, r *rule) bool {
	native := a.NativeRep()
	info := native.SourceInfo()
	before := len(d.probs)
	badKind := func(e celast.Expr, k string) {
		loc := info.GetStartLocation(e.ID())
		d.celError(n, loc.Line(), loc.Column(), fmt.Sprintf("%q is not an action kind (%s)", k, kindNames))
	}
	celast.PreOrderVisit(native.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() == varUsage {
				r.usesUsage = true
			}
		case celast.CallKind:
			c := e.AsCall()
			for _, lit := range kindLiterals(c) {
				if s, ok := lit.AsLiteral().(types.String); ok && kindBit(vigil.ActionKind(s)) == unknownKind {
					badKind(lit, string(s))
				}
			}
		}
	}))
	if len(d.probs) > before {
		return false
	}
	var kinds kindSet
	restricted := false
	for _, c := range conjuncts(native.Expr(), nil) {
		path, lits, ok := literalTest(c)
		if !ok {
			continue
		}
		if path == kindPath {
			var k kindSet
			for _, s := range lits {
				k |= kindBit(vigil.ActionKind(s))
			}
			if restricted {
				kinds &= k
			} else {
				kinds, restricted = k, true
			}
			continue
		}
		if f, ok := guardFields[path]; ok && len(lits) > 0 {
			pats := make([]pattern, len(lits))
			for i, s := range lits {
				pats[i] = pattern{op: opExact, lit: s, raw: s}
			}
			r.filter.checks = append(r.filter.checks, check{field: f, pats: pats})
		}
	}
	if restricted {
		if r.filter.kinds != 0 {
			kinds &= r.filter.kinds
		}
		if kinds == 0 {
			d.errorf(n, "this rule can never match: its conditions on action.kind exclude every kind")
			return false
		}
		r.filter.kinds = kinds
	}
	return true
}

// stripGuards replaces the top-level conjuncts that analyse lifted into the filter with
// true. It is exact because guard attributes never fail to evaluate.
type stripGuards struct{}

func (stripGuards) Optimize(ctx *cel.OptimizerContext, a *celast.AST) *celast.AST {
	for _, c := range conjuncts(a.Expr(), nil) {
		if path, _, ok := literalTest(c); ok && isGuard(path) {
			ctx.UpdateExpr(c, ctx.NewLiteral(types.True))
		}
	}
	return a
}

func isGuard(path string) bool {
	_, ok := guardFields[path]
	return ok || path == kindPath
}

// conjuncts flattens a tree of && into its operands.
func conjuncts(e celast.Expr, out []celast.Expr) []celast.Expr {
	if e.Kind() == celast.CallKind {
		if c := e.AsCall(); c.FunctionName() == operators.LogicalAnd {
			for _, arg := range c.Args() {
				out = conjuncts(arg, out)
			}
			return out
		}
	}
	return append(out, e)
}

// selectPath returns "var.field" for a field selection on a variable.
func selectPath(e celast.Expr) (string, bool) {
	if e.Kind() != celast.SelectKind {
		return "", false
	}
	s := e.AsSelect()
	if s.IsTestOnly() || s.Operand().Kind() != celast.IdentKind {
		return "", false
	}
	return s.Operand().AsIdent() + "." + s.FieldName(), true
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// literalTest recognises `path == "lit"`, `"lit" == path` and `path in ["a", "b"]`.
func literalTest(e celast.Expr) (path string, lits []string, ok bool) {
	if e.Kind() != celast.CallKind {
		return "", nil, false
	}
	c := e.AsCall()
	args := c.Args()
	if len(args) != 2 {
		return "", nil, false
	}
	switch c.FunctionName() {
	case operators.Equals:
		for _, pair := range [2][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			p, okp := selectPath(pair[0])
			s, oks := stringLiteral(pair[1])
			if okp && oks {
				return p, []string{s}, true
			}
		}
	case operators.In:
		p, okp := selectPath(args[0])
		if !okp || args[1].Kind() != celast.ListKind {
			return "", nil, false
		}
		for _, el := range args[1].AsList().Elements() {
			s, oks := stringLiteral(el)
			if !oks {
				return "", nil, false
			}
			lits = append(lits, s)
		}
		return p, lits, true
	}
	return "", nil, false
}

// kindLiterals returns the string literals that a call compares action.kind with.
func kindLiterals(c celast.CallExpr) []celast.Expr {
	args := c.Args()
	if len(args) != 2 {
		return nil
	}
	switch c.FunctionName() {
	case operators.Equals, operators.NotEquals:
		for _, pair := range [2][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if p, ok := selectPath(pair[0]); ok && p == kindPath && pair[1].Kind() == celast.LiteralKind {
				return []celast.Expr{pair[1]}
			}
		}
	case operators.In:
		if p, ok := selectPath(args[0]); ok && p == kindPath && args[1].Kind() == celast.ListKind {
			var out []celast.Expr
			for _, el := range args[1].AsList().Elements() {
				if el.Kind() == celast.LiteralKind {
					out = append(out, el)
				}
			}
			return out
		}
	}
	return nil
}

package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Limits on what a policy may contain.
const (
	// MaxPolicyBytes caps a policy file.
	MaxPolicyBytes = 4 << 20
	// DefaultApprovalTimeout is how long a held action waits when its rule names no
	// timeout; when it runs out the action is denied.
	DefaultApprovalTimeout = 10 * time.Minute
	// MaxApprovalTimeout caps approval.timeout.
	MaxApprovalTimeout = 7 * 24 * time.Hour
	// MaxApprovers caps approval.approvers.
	MaxApprovers = 10
)

// DefaultApprovalRoles are who may approve when a rule names no roles. Admins hold
// every role, so they may always approve.
var DefaultApprovalRoles = []vigil.Role{vigil.RoleReviewer}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Policy is a compiled policy: immutable and safe for concurrent use.
type Policy struct {
	name    string
	version string
	src     []byte
	def     vigil.Effect
	defMsg  string
	rules   []rule
	ids     []string // rule ids by index, sliced into Decision.Rules
	// byKind lists, for each kind index, the rules whose filter admits that kind, in
	// policy order.
	byKind [nKinds + 1][]int32
	limits []limit
	// needsUsage is set when a limit or a condition reads usage, so the engine must
	// have current counts before deciding.
	needsUsage bool
}

type rule struct {
	id          string
	effect      vigil.Effect
	message     string
	approval    *vigil.ApprovalSpec
	skipOnError bool
	filter      filter
	prg         cel.Program // nil when the rule has no `when`
	usesUsage   bool        // the condition reads usage
}

// Name is the file (or label) the policy was compiled from.
func (p *Policy) Name() string { return p.name }

// Version is the policy's content hash: the hex SHA-256 of its canonical bytes. It
// names this policy in every decision and in the ledger.
func (p *Policy) Version() string { return p.version }

// Bytes returns a copy of the policy's canonical text.
func (p *Policy) Bytes() []byte { return bytes.Clone(p.src) }

// Canonical returns the bytes a policy's version is the hash of: src without a UTF-8
// byte-order mark and with CRLF line ends turned into LF, so the same text saved on
// another system keeps its version.
func Canonical(src []byte) []byte {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if bytes.Contains(src, []byte("\r\n")) {
		src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	}
	return src
}

// Version returns the version a policy with text src has, without compiling it.
func Version(src []byte) string {
	sum := sha256.Sum256(Canonical(src))
	return hex.EncodeToString(sum[:])
}

// LoadFile reads and compiles the policy at path. A policy that does not compile
// gives a *CompileError listing every problem with its line.
func LoadFile(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read policy: %w", err)
	}
	return Compile(path, b)
}

// Compile compiles a policy's text; name is where it came from (a path or a label such
// as "api") and appears in problems. The error, when not nil, is a *CompileError.
func Compile(name string, src []byte) (*Policy, error) {
	if len(src) > MaxPolicyBytes {
		return nil, &CompileError{Problems: []Problem{{File: name, Message: fmt.Sprintf("the policy is %d bytes; the most is %d", len(src), MaxPolicyBytes)}}}
	}
	canon := Canonical(src)
	d := newDecoder(name, canon)
	root := d.document()
	if root == nil {
		return nil, d.err()
	}
	sum := sha256.Sum256(canon)
	p := &Policy{name: name, version: hex.EncodeToString(sum[:]), src: canon}
	f := d.fields(root, "the policy", "version", "description", "default", "rules", "limits")
	if n := f["version"]; n == nil {
		d.errorAt(root.Line, root.Column, "version is required (version: 1)")
	} else if v, ok := d.int(n, "version"); ok && v != 1 {
		d.errorf(n, "version %d is not supported; this Vigil reads version 1", v)
	}
	if n := f["description"]; n != nil {
		d.str(n, "description")
	}
	if n := f["default"]; n == nil {
		d.errorAt(root.Line, root.Column, "default is required: the effect when no rule matches (allow, deny or require_approval)")
	} else {
		p.def = d.effect(n, "default")
		p.defMsg = fmt.Sprintf("no policy rule matched; the default is %s", p.def)
	}
	seen := map[string]int{}
	unique := func(id string, n *yaml.Node) {
		if id == "" {
			return
		}
		if line, dup := seen[id]; dup {
			d.errorf(n, "id %q is already used on line %d", id, line)
			return
		}
		seen[id] = n.Line
	}
	if n := f["rules"]; n != nil {
		for i, rn := range d.list(n, "rules") {
			r, idNode := d.compileRule(rn, i)
			unique(r.id, idNode)
			if r.usesUsage {
				p.needsUsage = true
			}
			p.rules = append(p.rules, r)
		}
	}
	if n := f["limits"]; n != nil {
		for i, ln := range d.list(n, "limits") {
			l, idNode := d.compileLimit(ln, i)
			unique(l.id, idNode)
			p.limits = append(p.limits, l)
		}
	}
	if len(p.limits) > 0 {
		p.needsUsage = true
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	p.ids = make([]string, len(p.rules))
	for i := range p.rules {
		p.ids[i] = p.rules[i].id
		for k := range p.byKind {
			if ks := p.rules[i].filter.kinds; ks == 0 || ks&(1<<k) != 0 {
				p.byKind[k] = append(p.byKind[k], int32(i))
			}
		}
	}
	return p, nil
}

func (d *decoder) effect(n *yaml.Node, what string) vigil.Effect {
	s, ok := d.scalar(n, what)
	if !ok {
		return ""
	}
	e := vigil.Effect(s)
	if !e.Valid() {
		d.errorf(n, "%s %q is not one of allow, deny, require_approval", what, s)
	}
	return e
}

// ruleID reads the id of the rule or limit at index i of list and makes it the one
// later problems are attributed to.
func (d *decoder) ruleID(f map[string]*yaml.Node, n *yaml.Node, list string, i int) (string, *yaml.Node) {
	d.rule = fmt.Sprintf("%s[%d]", list, i)
	idNode := f["id"]
	if idNode == nil {
		d.errorf(n, "id is required")
		return "", n
	}
	id := d.str(idNode, "id")
	if id == "" {
		return "", idNode
	}
	if !idPattern.MatchString(id) {
		d.errorf(idNode, "id %q must be letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit)", id)
		return "", idNode
	}
	d.rule = id
	return id, idNode
}

func (d *decoder) compileRule(n *yaml.Node, i int) (rule, *yaml.Node) {
	defer func() { d.section, d.rule = "", "" }()
	d.section, d.rule = "rule", cmp.Or(peekID(n), fmt.Sprintf("rules[%d]", i))
	f := d.fields(n, "", "id", "description", "match", "when", "effect", "message", "approval", "on_error")
	var r rule
	var idNode *yaml.Node
	r.id, idNode = d.ruleID(f, resolve(n), "rules", i)
	if x := f["description"]; x != nil {
		d.str(x, "description")
	}
	if x := f["effect"]; x == nil {
		d.errorf(resolve(n), "effect is required (allow, deny or require_approval)")
	} else {
		r.effect = d.effect(x, "effect")
	}
	if x := f["match"]; x != nil {
		r.filter = d.scope(x, "match", true)
	}
	if x := f["when"]; x != nil {
		// A bare true or false is a fine condition, so no d.str here.
		if expr, _ := d.scalar(x, "when"); strings.TrimSpace(expr) != "" {
			d.compileWhen(resolve(x), expr, &r)
		} else {
			d.errorf(x, "when is empty; leave it out to match every action in scope")
		}
	}
	if x := f["message"]; x != nil {
		r.message = d.str(x, "message")
	}
	if r.message == "" {
		switch r.effect {
		case vigil.Deny:
			r.message = "denied by policy rule " + r.id
		case vigil.RequireApproval:
			r.message = "held for human approval by policy rule " + r.id
		case vigil.Allow:
			r.message = "allowed by policy rule " + r.id
		}
	}
	if x := f["approval"]; x != nil {
		if r.effect != vigil.RequireApproval {
			d.errorf(x, "approval is only for rules whose effect is require_approval")
		}
		r.approval = d.approval(x)
	} else if r.effect == vigil.RequireApproval {
		r.approval = &vigil.ApprovalSpec{Roles: DefaultApprovalRoles, Approvers: 1, Timeout: DefaultApprovalTimeout}
	}
	if x := f["on_error"]; x != nil {
		switch s, _ := d.scalar(x, "on_error"); s {
		case "skip":
			r.skipOnError = true
		case "deny":
		default:
			d.errorf(x, "on_error %q is not skip or deny (the default)", s)
		}
	}
	return r, idNode
}

func (d *decoder) approval(n *yaml.Node) *vigil.ApprovalSpec {
	spec := &vigil.ApprovalSpec{Roles: DefaultApprovalRoles, Approvers: 1, Timeout: DefaultApprovalTimeout}
	f := d.fields(n, "approval", "roles", "approvers", "timeout", "require_training")
	if x := f["roles"]; x != nil {
		spec.Roles = nil
		for _, e := range d.strNodes(x, "approval.roles") {
			r := vigil.Role(e.Value)
			if !r.Valid() {
				d.errorf(e, "approval.roles: %q is not a role (admin, reviewer, auditor, viewer)", e.Value)
				continue
			}
			if !slices.Contains(spec.Roles, r) {
				spec.Roles = append(spec.Roles, r)
			}
		}
		if len(spec.Roles) == 0 {
			d.errorf(x, "approval.roles must name at least one role")
		}
	}
	if x := f["approvers"]; x != nil {
		if v, ok := d.int(x, "approval.approvers"); ok {
			if v < 1 || v > MaxApprovers {
				d.errorf(x, "approval.approvers must be between 1 and %d", MaxApprovers)
			}
			spec.Approvers = int(v)
		}
	}
	if x := f["timeout"]; x != nil {
		if v, ok := d.duration(x, "approval.timeout"); ok {
			if v <= 0 || v > MaxApprovalTimeout {
				d.errorf(x, "approval.timeout must be more than 0 and at most %s", MaxApprovalTimeout)
			}
			spec.Timeout = v
		}
	}
	if x := f["require_training"]; x != nil {
		// A competence the reviewer must hold a current training record for (ISO/IEC
		// 42001 clause 7, EU AI Act Art. 26(2)); the records live in the AI management
		// system.
		c := d.str(x, "approval.require_training")
		if c == "" || strings.ContainsAny(c, ", \t\n") {
			d.errorf(x, "approval.require_training must name one competence, such as refunds-oversight")
		}
		spec.RequireTraining = c
	}
	return spec
}

// scope decodes a `match:` block. Rules may use every key; limits (rules == false)
// only agents and systems, since counters belong to agents and systems.
func (d *decoder) scope(n *yaml.Node, what string, rules bool) filter {
	keys := []string{"agents", "systems"}
	if rules {
		keys = append(keys, "kinds", "providers", "models", "servers", "tools", "resources")
	}
	f := d.fields(n, what, keys...)
	var out filter
	add := func(key string, field fieldID) {
		x := f[key]
		if x == nil {
			return
		}
		var pats []pattern
		for _, e := range d.strNodes(x, what+"."+key) {
			s := e.Value
			if s == "" {
				d.errorf(e, "%s.%s: an empty pattern matches nothing; use \"*\" for anything", what, key)
				continue
			}
			p := compilePattern(s)
			if field == fTool {
				if server, name, ok := strings.Cut(s, "/"); ok {
					if server == "" || name == "" {
						d.errorf(e, "%s.tools: %q must be server/tool or tool", what, s)
						continue
					}
					sp := compilePattern(server)
					p = compilePattern(name)
					p.server = &sp
				}
			}
			pats = append(pats, p)
		}
		if len(pats) > 0 {
			out.checks = append(out.checks, check{field: field, pats: pats, present: true})
		}
	}
	// Cheapest and most selective first.
	add("tools", fTool)
	add("servers", fServer)
	add("models", fModel)
	add("providers", fProvider)
	add("resources", fResource)
	add("agents", fAgentName)
	add("systems", fSystem)
	if x := f["kinds"]; x != nil {
		for _, e := range d.strNodes(x, what+".kinds") {
			b := kindBit(vigil.ActionKind(e.Value))
			if b == unknownKind {
				d.errorf(e, "%s.kinds: %q is not an action kind (%s)", what, e.Value, kindNames)
				continue
			}
			out.kinds |= b
		}
	}
	return out
}

// limit is a compiled entry of `limits:`.
type limit struct {
	id        string
	perSystem bool
	filter    filter
	bounds    []bound
}

// bound is one maximum of a limit, e.g. calls_per_minute: 60.
type bound struct {
	metric  metric
	window  window
	max     int64
	name    string // "<limit id>/<metric>_per_<window>", for Decision.Limit
	message string
}

func (d *decoder) compileLimit(n *yaml.Node, i int) (limit, *yaml.Node) {
	defer func() { d.section, d.rule = "", "" }()
	keys := []string{"id", "description", "match", "per", "message"}
	for m := range nMetrics {
		for w := range nWindows {
			keys = append(keys, metricNames[m]+"_per_"+windowNames[w])
		}
	}
	d.section, d.rule = "limit", cmp.Or(peekID(n), fmt.Sprintf("limits[%d]", i))
	f := d.fields(n, "", keys...)
	before := len(d.probs)
	var l limit
	var idNode *yaml.Node
	l.id, idNode = d.ruleID(f, resolve(n), "limits", i)
	if x := f["description"]; x != nil {
		d.str(x, "description")
	}
	if x := f["match"]; x != nil {
		l.filter = d.scope(x, "match", false)
	}
	whose := "agent"
	if x := f["per"]; x != nil {
		switch s, _ := d.scalar(x, "per"); s {
		case "agent":
		case "system":
			l.perSystem, whose = true, "system"
		default:
			d.errorf(x, "per %q is not agent or system", s)
		}
	}
	var custom string
	if x := f["message"]; x != nil {
		custom = d.str(x, "message")
	}
	for m := range nMetrics {
		for w := range nWindows {
			key := metricNames[m] + "_per_" + windowNames[w]
			x := f[key]
			if x == nil {
				continue
			}
			b := bound{metric: m, window: w, name: l.id + "/" + key}
			var shown string
			if m == mCost {
				v, ok := d.float(x, key)
				if !ok {
					continue
				}
				if v < 0 || math.IsNaN(v) || v > math.MaxInt64/MicrosPerUnit {
					d.errorf(x, "%s must be a positive amount", key)
					continue
				}
				b.max = int64(math.Round(v * MicrosPerUnit))
				shown = fmt.Sprintf("cost %s per %s", strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", v), "0"), "."), windowNames[w])
			} else {
				v, ok := d.int(x, key)
				if !ok {
					continue
				}
				if v < 0 {
					d.errorf(x, "%s must not be negative", key)
					continue
				}
				b.max = v
				shown = fmt.Sprintf("%d %s per %s", v, strings.ReplaceAll(metricNames[m], "_", " "), windowNames[w])
			}
			if custom != "" {
				b.message = "limit reached: " + custom
			} else {
				b.message = fmt.Sprintf("limit reached: %s per %s (limit %s)", shown, whose, l.id)
			}
			l.bounds = append(l.bounds, b)
		}
	}
	if len(l.bounds) == 0 && len(d.probs) == before {
		d.errorf(resolve(n), "a limit needs at least one maximum, such as calls_per_minute: 60")
	}
	return l, idNode
}

// String describes the policy for logs and the CLI: its source, short version and size.
func (p *Policy) String() string {
	return fmt.Sprintf("%s (version %s, %d rules, %d limits)", p.name, p.version[:12], len(p.rules), len(p.limits))
}

// BuiltinSource is the policy a gateway runs when no policy file is configured: every
// action is allowed, and still counted and recorded with this policy's version.
const BuiltinSource = "# Built-in policy: no policy file is configured, so everything is allowed.\nversion: 1\ndefault: allow\n"

// Builtin returns BuiltinSource compiled, named "(built-in)".
func Builtin() *Policy {
	p, err := Compile("(built-in)", []byte(BuiltinSource))
	if err != nil {
		panic(fmt.Sprintf("policy: the built-in policy doesn't compile: %v", err))
	}
	return p
}

package policy

import (
	"strings"
	"unicode/utf8"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// A filter is the cheap part of a rule: the `match:` scope written in the file plus the
// guards lifted out of its `when` condition. Rules whose filter fails are skipped
// without running CEL.

// kindSet is a set of action kinds; the zero set means "any kind".
type kindSet uint8

// The action kinds by index; kindIndex gives an unknown kind the index nKinds.
var kinds = [...]vigil.ActionKind{vigil.ModelCall, vigil.ModelResponse, vigil.ToolCall, vigil.ToolResult, vigil.ResourceRead, vigil.PromptGet}

const nKinds = len(kinds)

// unknownKind is the bit of any kind this version does not know.
const unknownKind kindSet = 1 << nKinds

// kindNames lists the kinds in the order error messages show them.
const kindNames = "model_call, model_response, tool_call, tool_result, resource_read, prompt_get"

func kindIndex(k vigil.ActionKind) int {
	for i, x := range kinds {
		if x == k {
			return i
		}
	}
	return nKinds
}

// kindBit is k's bit; an unknown kind's bit is in no filter's set, so it matches only
// filters that leave the kind unrestricted.
func kindBit(k vigil.ActionKind) kindSet { return 1 << kindIndex(k) }

// isCall reports whether an action of kind k is a request that uses something (and so
// counts as a call for usage and limits), rather than a response coming back.
func isCall(k vigil.ActionKind) bool {
	return k == vigil.ModelCall || k == vigil.ToolCall || k == vigil.ResourceRead || k == vigil.PromptGet
}

// fieldID names an action attribute that filters can test.
type fieldID uint8

const (
	fAgentID fieldID = iota
	fAgentName
	fSystem
	fProvider
	fModel
	fServer
	fTool
	fResource
	fURI
	fPrompt
	nFields
)

// attrs are the filterable attributes of one action, read once per evaluation.
// Absent attributes read as "", as they do in CEL, with ok false.
type attrs struct {
	kind   int // kindIndex
	val    [nFields]string
	ok     [nFields]bool
	server string // the tool's server, for server/tool patterns
	tool   bool   // the action has a tool
}

func (x *attrs) load(a *vigil.Action) {
	x.kind = kindIndex(a.Kind)
	set := func(f fieldID, v string, ok bool) { x.val[f], x.ok[f] = v, ok }
	set(fAgentID, a.Actor.ID, true)
	set(fAgentName, a.Actor.Name, true)
	set(fSystem, a.Actor.SystemName, true)
	if a.Model != nil {
		set(fProvider, a.Model.Provider, true)
		set(fModel, a.Model.Name, true)
	}
	if a.Tool != nil {
		set(fServer, a.Tool.Server, true)
		set(fTool, a.Tool.Name, true)
		x.server, x.tool = a.Tool.Server, true
	}
	set(fResource, a.Resource, a.Resource != "")
	if a.Kind == vigil.ResourceRead {
		set(fURI, a.Resource, true)
	}
	if a.Kind == vigil.PromptGet {
		set(fPrompt, a.Resource, true)
	}
}

// check passes when the attribute matches one of pats. When present is set (scopes),
// an action without the attribute's part fails even a "*" pattern; guards lifted from
// CEL leave it unset so they agree with CEL, where absent parts read as "".
type check struct {
	field   fieldID
	pats    []pattern
	present bool
}

type filter struct {
	kinds  kindSet
	checks []check
}

func (f *filter) match(x *attrs) bool {
	if f.kinds != 0 && f.kinds&(1<<x.kind) == 0 {
		return false
	}
	for i := range f.checks {
		c := &f.checks[i]
		if c.present && !x.ok[c.field] {
			return false
		}
		if !anyMatch(c.pats, x.val[c.field], x) {
			return false
		}
	}
	return true
}

func anyMatch(pats []pattern, s string, x *attrs) bool {
	for i := range pats {
		p := &pats[i]
		if p.server != nil && (!x.tool || !p.server.match(x.server)) {
			continue
		}
		if p.match(s) {
			return true
		}
	}
	return false
}

// pattern is a compiled glob: `*` matches any run of characters (including none and
// including "/"), `?` exactly one character, everything else itself. There are no
// character classes and no escapes: names in Vigil never contain `*` or `?`.
type pattern struct {
	op  uint8
	lit string // the literal part for exact, prefix and suffix
	raw string
	// server, for tools patterns written server/tool, must match the tool's server.
	server *pattern
}

const (
	opExact uint8 = iota
	opAny
	opPrefix
	opSuffix
	opGlob
)

func compilePattern(s string) pattern {
	p := pattern{raw: s, lit: s}
	wild := strings.IndexAny(s, "*?")
	switch {
	case wild < 0:
		p.op = opExact
	case s == "*":
		p.op = opAny
	case wild == len(s)-1 && s[wild] == '*':
		p.op, p.lit = opPrefix, s[:wild]
	case s[0] == '*' && !strings.ContainsAny(s[1:], "*?"):
		p.op, p.lit = opSuffix, s[1:]
	default:
		p.op = opGlob
	}
	return p
}

func (p *pattern) match(s string) bool {
	switch p.op {
	case opExact:
		return s == p.lit
	case opAny:
		return true
	case opPrefix:
		return strings.HasPrefix(s, p.lit)
	case opSuffix:
		return strings.HasSuffix(s, p.lit)
	}
	return globMatch(p.raw, s)
}

// globMatch matches s against a pattern with `*` and `?` in linear space and without
// allocating, backtracking only to the last `*` (which is enough for these patterns).
func globMatch(p, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starPx >= 0 && starSx < len(s) {
			_, n := utf8.DecodeRuneInString(s[starSx:])
			starSx += n
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

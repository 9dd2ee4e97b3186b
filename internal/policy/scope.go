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

// unknownKind is the bit of any kind this version does not know.
const unknownKind kindSet = 1 << 7

// kindNames lists the kinds in the order error messages show them.
const kindNames = "model_call, model_response, tool_call, tool_result, resource_read, prompt_get"

func kindBit(k vigil.ActionKind) kindSet {
	switch k {
	case vigil.ModelCall:
		return 1 << 0
	case vigil.ModelResponse:
		return 1 << 1
	case vigil.ToolCall:
		return 1 << 2
	case vigil.ToolResult:
		return 1 << 3
	case vigil.ResourceRead:
		return 1 << 4
	case vigil.PromptGet:
		return 1 << 5
	}
	return unknownKind // matches only unrestricted filters
}

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
)

// value returns the attribute and whether the part of the action holding it exists
// (a model call has no tool). Absent attributes read as "", as they do in CEL.
func (f fieldID) value(a *vigil.Action) (string, bool) {
	switch f {
	case fAgentID:
		return a.Actor.ID, true
	case fAgentName:
		return a.Actor.Name, true
	case fSystem:
		return a.Actor.SystemName, true
	case fProvider:
		if a.Model == nil {
			return "", false
		}
		return a.Model.Provider, true
	case fModel:
		if a.Model == nil {
			return "", false
		}
		return a.Model.Name, true
	case fServer:
		if a.Tool == nil {
			return "", false
		}
		return a.Tool.Server, true
	case fTool:
		if a.Tool == nil {
			return "", false
		}
		return a.Tool.Name, true
	case fResource:
		return a.Resource, a.Resource != ""
	case fURI:
		if a.Kind != vigil.ResourceRead {
			return "", false
		}
		return a.Resource, true
	case fPrompt:
		if a.Kind != vigil.PromptGet {
			return "", false
		}
		return a.Resource, true
	}
	return "", false
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

func (f *filter) match(a *vigil.Action) bool {
	if f.kinds != 0 && f.kinds&kindBit(a.Kind) == 0 {
		return false
	}
	for i := range f.checks {
		c := &f.checks[i]
		v, ok := c.field.value(a)
		if c.present && !ok {
			return false
		}
		if !anyMatch(c.pats, v, a) {
			return false
		}
	}
	return true
}

func anyMatch(pats []pattern, s string, a *vigil.Action) bool {
	for i := range pats {
		p := &pats[i]
		if p.server != nil && (a.Tool == nil || !p.server.match(a.Tool.Server)) {
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

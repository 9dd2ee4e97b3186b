package policy

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// This file declares what a `when` condition can see and builds it for one action
// without reflection: every variable of a struct type is an *obj living inside the
// activation, and each field is read by a precomputed getter. Values that would
// allocate when boxed (strings, maps, lists) are memoised per evaluation, so a
// hundred rules reading tool.name box it once.

// Variables, by CEL name. Their documentation is in the package comment.
const (
	varAgent    = "agent"
	varAction   = "action"
	varModel    = "model"
	varTool     = "tool"
	varArgs     = "args"
	varResource = "resource"
	varPII      = "pii"
	varUsage    = "usage"
	varNow      = "now"
)

// objKind indexes the struct-typed values of one activation.
type objKind uint8

const (
	oAgent objKind = iota
	oAction
	oModel
	oTool
	oAnnotations
	oResource
	oPII
	oUsage       // the agent's counters
	oSystemUsage // its system's counters
	oWindows     // the agent's windows (calls, tool_calls, tokens, cost), then the system's
)

// nObj is the number of struct values in one activation.
const nObj = oWindows + 2*objKind(nMetrics)

// memo slots for values that allocate when boxed.
const (
	slotAgentID = iota
	slotAgentName
	slotAgentSystem
	slotAgentLabels
	slotKind
	slotProvider
	slotModel
	slotServer
	slotTool
	slotTitle
	slotURI
	slotName
	slotPIITypes
	slotPIICounts
	slotPIITotal
	slotArgs
	slotNow
	nSlots
)

// obj is a CEL value of one of the schema's struct types. It implements ref.Val; its
// fields are read through the FieldType getters of its objType.
type obj struct {
	typ *objType
	act *activation
	// c and w are set for usage counters and windows.
	c *Counters
	w *Window
}

func (o *obj) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s cannot be converted to %v", o.typ.name, t)
}

func (o *obj) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return o.typ.celType
	}
	return types.NewErr("type conversion error from %s to %s", o.typ.name, t.TypeName())
}

func (o *obj) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }
func (o *obj) Type() ref.Type              { return o.typ.celType }
func (o *obj) Value() any                  { return o }

// activation resolves the variables for one evaluation. It is pooled: nothing may keep
// a reference to it after the evaluation that used it.
type activation struct {
	a    *vigil.Action
	u    *Usage
	now  time.Time
	objs [nObj]obj
	memo [nSlots]ref.Val
	// noTool and noModel stand in for absent parts so getters need no nil checks.
	noTool  vigil.Tool
	noModel vigil.Model
	args    argsMap
}

// argsMap is args as CEL sees it: the action's map, with the values conditions read
// converted once per evaluation rather than once per rule (rules about one tool tend
// to read the same argument, and each conversion allocates).
type argsMap struct {
	traits.Mapper
	n     int
	cache [8]struct {
		key string
		val ref.Val
	}
}

func (m *argsMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return m.Mapper.Find(key)
	}
	for i := range m.n {
		if m.cache[i].key == string(k) {
			return m.cache[i].val, true
		}
	}
	v, found := m.Mapper.Find(key)
	if found && m.n < len(m.cache) {
		m.cache[m.n].key, m.cache[m.n].val = string(k), v
		m.n++
	}
	return v, found
}

func (m *argsMap) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return m.Mapper.Get(key)
}

var activations = sync.Pool{New: func() any {
	v := &activation{}
	s := theSchema()
	for i := range v.objs {
		v.objs[i] = obj{typ: s.byKind[i], act: v}
	}
	return v
}}

// newActivation returns a pooled activation over a, u and now; release it with free.
func newActivation(a *vigil.Action, u *Usage, now time.Time) *activation {
	v := activations.Get().(*activation)
	v.a, v.u, v.now = a, u, now
	for m := range metric(nMetrics) {
		v.objs[oWindows+objKind(m)].w = u.Agent.window(m)
		v.objs[oWindows+objKind(nMetrics)+objKind(m)].w = u.System.window(m)
	}
	v.objs[oUsage].c = &u.Agent
	v.objs[oSystemUsage].c = &u.System
	return v
}

func (v *activation) free() {
	v.a, v.u = nil, nil
	v.memo = [nSlots]ref.Val{}
	v.args = argsMap{}
	activations.Put(v)
}

// ResolveName implements interpreter.Activation.
func (v *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varAgent:
		return &v.objs[oAgent], true
	case varAction:
		return &v.objs[oAction], true
	case varModel:
		return &v.objs[oModel], true
	case varTool:
		return &v.objs[oTool], true
	case varArgs:
		return v.memoised(slotArgs, func() ref.Val {
			v.args.Mapper = types.NewStringInterfaceMap(types.DefaultTypeAdapter, v.a.Args)
			return &v.args
		}), true
	case varResource:
		return &v.objs[oResource], true
	case varPII:
		return &v.objs[oPII], true
	case varUsage:
		return &v.objs[oUsage], true
	case varNow:
		return v.memoised(slotNow, func() ref.Val { return types.Timestamp{Time: v.now} }), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (v *activation) Parent() interpreter.Activation { return nil }

func (v *activation) memoised(slot int, f func() ref.Val) ref.Val {
	if x := v.memo[slot]; x != nil {
		return x
	}
	x := f()
	v.memo[slot] = x
	return x
}

func (v *activation) str(slot int, s string) ref.Val {
	if x := v.memo[slot]; x != nil {
		return x
	}
	x := ref.Val(types.String(s))
	v.memo[slot] = x
	return x
}

func (v *activation) tool() *vigil.Tool {
	if v.a.Tool != nil {
		return v.a.Tool
	}
	return &v.noTool
}

func (v *activation) model() *vigil.Model {
	if v.a.Model != nil {
		return v.a.Model
	}
	return &v.noModel
}

// objType is one struct type of the schema.
type objType struct {
	name    string
	celType *types.Type
	fields  map[string]*types.FieldType
	names   []string
}

// field declares one field: its CEL type, how to read it and when has() is true.
type field struct {
	name string
	typ  *types.Type
	get  func(o *obj) ref.Val
	// set reports presence for has(); nil means "always present".
	set func(o *obj) bool
}

var errNotObj = errors.New("policy: field read from a value that is not a policy object")

func newObjType(name string, fields ...field) *objType {
	t := &objType{name: name, celType: types.NewObjectType(name), fields: map[string]*types.FieldType{}}
	for _, f := range fields {
		get, set := f.get, f.set
		t.names = append(t.names, f.name)
		t.fields[f.name] = &types.FieldType{
			Type: f.typ,
			IsSet: func(target any) bool {
				o, ok := target.(*obj)
				if !ok {
					return false
				}
				if set == nil {
					return true
				}
				return set(o)
			},
			GetFrom: func(target any) (any, error) {
				o, ok := target.(*obj)
				if !ok {
					return nil, errNotObj
				}
				return get(o), nil
			},
		}
	}
	return t
}

// schema is the types.Provider that adds the policy's struct types to CEL's own.
type schema struct {
	types.Provider
	byName map[string]*objType
	byKind [nObj]*objType
	env    *cel.Env
	// optimizer removes lifted guards from conditions and folds constants.
	optimizer *cel.StaticOptimizer
}

func (s *schema) FindStructType(name string) (*types.Type, bool) {
	if t, ok := s.byName[name]; ok {
		return types.NewTypeTypeWithParam(t.celType), true
	}
	return s.Provider.FindStructType(name)
}

func (s *schema) FindStructFieldNames(name string) ([]string, bool) {
	if t, ok := s.byName[name]; ok {
		return t.names, true
	}
	return s.Provider.FindStructFieldNames(name)
}

func (s *schema) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	if t, ok := s.byName[name]; ok {
		f, ok := t.fields[fieldName]
		return f, ok
	}
	return s.Provider.FindStructFieldType(name, fieldName)
}

func (s *schema) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := s.byName[name]; ok {
		return types.NewErr("%s values cannot be constructed in a policy", name)
	}
	return s.Provider.NewValue(name, fields)
}

// theSchema builds the CEL environment once; it is immutable afterwards.
var theSchema = sync.OnceValue(func() *schema {
	reg, err := types.NewRegistry()
	if err != nil {
		panic(err) // cannot happen: no types are registered
	}
	str := func(name string, slot int, read func(v *activation) string) field {
		return field{name: name, typ: types.StringType,
			get: func(o *obj) ref.Val { return o.act.str(slot, read(o.act)) },
			set: func(o *obj) bool { return read(o.act) != "" }}
	}
	boolean := func(name string, read func(a *vigil.ToolAnnotations) bool) field {
		return field{name: name, typ: types.BoolType,
			get: func(o *obj) ref.Val { return types.Bool(read(&o.act.tool().Annotations)) }}
	}
	sub := func(name string, k objKind, typ *types.Type, present func(v *activation) bool) field {
		return field{name: name, typ: typ,
			get: func(o *obj) ref.Val { return &o.act.objs[k] },
			set: func(o *obj) bool { return present(o.act) }}
	}
	window := newObjType("vigil.Window",
		field{name: "minute", typ: types.IntType, get: func(o *obj) ref.Val { return types.Int(o.w.Minute) }},
		field{name: "hour", typ: types.IntType, get: func(o *obj) ref.Val { return types.Int(o.w.Hour) }},
		field{name: "day", typ: types.IntType, get: func(o *obj) ref.Val { return types.Int(o.w.Day) }},
	)
	money := func(n int64) ref.Val { return types.Double(float64(n) / MicrosPerUnit) }
	costWindow := newObjType("vigil.CostWindow",
		field{name: "minute", typ: types.DoubleType, get: func(o *obj) ref.Val { return money(o.w.Minute) }},
		field{name: "hour", typ: types.DoubleType, get: func(o *obj) ref.Val { return money(o.w.Hour) }},
		field{name: "day", typ: types.DoubleType, get: func(o *obj) ref.Val { return money(o.w.Day) }},
	)
	counterFields := func(base objKind) []field {
		always := func(*activation) bool { return true }
		return []field{
			sub("calls", base+objKind(mCalls), window.celType, always),
			sub("tool_calls", base+objKind(mToolCalls), window.celType, always),
			sub("tokens", base+objKind(mTokens), window.celType, always),
			sub("cost", base+objKind(mCost), costWindow.celType, always),
		}
	}
	systemUsage := newObjType("vigil.SystemUsage", counterFields(oWindows+objKind(nMetrics))...)
	usage := newObjType("vigil.Usage", append(counterFields(oWindows),
		sub("system", oSystemUsage, systemUsage.celType, func(*activation) bool { return true }))...)
	annotations := newObjType("vigil.ToolAnnotations",
		str("title", slotTitle, func(v *activation) string { return v.tool().Annotations.Title }),
		boolean("readOnlyHint", func(a *vigil.ToolAnnotations) bool { return a.ReadOnlyHint }),
		boolean("destructiveHint", func(a *vigil.ToolAnnotations) bool { return a.DestructiveHint }),
		boolean("idempotentHint", func(a *vigil.ToolAnnotations) bool { return a.IdempotentHint }),
		boolean("openWorldHint", func(a *vigil.ToolAnnotations) bool { return a.OpenWorldHint }),
	)
	s := &schema{Provider: reg, byName: map[string]*objType{}}
	add := func(k objKind, t *objType) {
		s.byKind[k] = t
		s.byName[t.name] = t
	}
	add(oAgent, newObjType("vigil.Agent",
		str("id", slotAgentID, func(v *activation) string { return v.a.Actor.ID }),
		str("name", slotAgentName, func(v *activation) string { return v.a.Actor.Name }),
		str("system", slotAgentSystem, func(v *activation) string { return v.a.Actor.SystemName }),
		field{name: "labels", typ: types.NewMapType(types.StringType, types.StringType),
			get: func(o *obj) ref.Val {
				return o.act.memoised(slotAgentLabels, func() ref.Val {
					return types.NewStringStringMap(types.DefaultTypeAdapter, o.act.a.Actor.Labels)
				})
			},
			set: func(o *obj) bool { return len(o.act.a.Actor.Labels) > 0 }},
	))
	add(oAction, newObjType("vigil.Action",
		str("kind", slotKind, func(v *activation) string { return string(v.a.Kind) }),
	))
	add(oModel, newObjType("vigil.Model",
		str("provider", slotProvider, func(v *activation) string { return v.model().Provider }),
		str("name", slotModel, func(v *activation) string { return v.model().Name }),
	))
	add(oAnnotations, annotations)
	add(oTool, newObjType("vigil.Tool",
		str("server", slotServer, func(v *activation) string { return v.tool().Server }),
		str("name", slotTool, func(v *activation) string { return v.tool().Name }),
		sub("annotations", oAnnotations, annotations.celType, func(v *activation) bool { return v.a.Tool != nil }),
	))
	add(oResource, newObjType("vigil.Resource",
		str("uri", slotURI, func(v *activation) string {
			if v.a.Kind == vigil.ResourceRead {
				return v.a.Resource
			}
			return ""
		}),
		str("name", slotName, func(v *activation) string {
			if v.a.Kind == vigil.PromptGet {
				return v.a.Resource
			}
			return ""
		}),
	))
	add(oPII, newObjType("vigil.PII",
		field{name: "types", typ: types.NewListType(types.StringType),
			get: func(o *obj) ref.Val {
				return o.act.memoised(slotPIITypes, func() ref.Val {
					return types.NewStringList(types.DefaultTypeAdapter, o.act.a.PII.Types())
				})
			},
			set: func(o *obj) bool { return o.act.a.PII.Total() > 0 }},
		field{name: "counts", typ: types.NewMapType(types.StringType, types.IntType),
			get: func(o *obj) ref.Val {
				return o.act.memoised(slotPIICounts, func() ref.Val {
					return types.NewMap(types.DefaultTypeAdapter, o.act.a.PII.Counts)
				})
			},
			set: func(o *obj) bool { return o.act.a.PII.Total() > 0 }},
		field{name: "total", typ: types.IntType,
			get: func(o *obj) ref.Val {
				// Total walks a map; read it once per evaluation.
				return o.act.memoised(slotPIITotal, func() ref.Val { return types.Int(o.act.a.PII.Total()) })
			}},
	))
	add(oUsage, usage)
	add(oSystemUsage, systemUsage)
	for m := range metric(nMetrics) {
		t := window
		if m == mCost {
			t = costWindow
		}
		add(oWindows+objKind(m), t)
		add(oWindows+objKind(nMetrics)+objKind(m), t)
	}
	s.byName[window.name], s.byName[costWindow.name] = window, costWindow

	env, err := cel.NewEnv(
		cel.CustomTypeProvider(s),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ExtendedValidations(),
		ext.Strings(),
		cel.Variable(varAgent, s.byKind[oAgent].celType),
		cel.Variable(varAction, s.byKind[oAction].celType),
		cel.Variable(varModel, s.byKind[oModel].celType),
		cel.Variable(varTool, s.byKind[oTool].celType),
		cel.Variable(varArgs, types.NewMapType(types.StringType, types.DynType)),
		cel.Variable(varResource, s.byKind[oResource].celType),
		cel.Variable(varPII, s.byKind[oPII].celType),
		cel.Variable(varUsage, usage.celType),
		cel.Variable(varNow, types.TimestampType),
	)
	if err != nil {
		panic(fmt.Sprintf("policy: couldn't build the CEL environment: %v", err))
	}
	s.env = env
	folder, err := cel.NewConstantFoldingOptimizer()
	if err != nil {
		panic(fmt.Sprintf("policy: couldn't build the CEL optimizer: %v", err))
	}
	s.optimizer, err = cel.NewStaticOptimizer(stripGuards{}, folder)
	if err != nil {
		panic(fmt.Sprintf("policy: couldn't build the CEL optimizer: %v", err))
	}
	return s
})

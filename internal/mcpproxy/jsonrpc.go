package mcpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// JSON-RPC error codes. The standard ones, then Vigil's own in the range JSON-RPC
// leaves to implementations. Each error Vigil itself answers with also carries
// data.vigil.code, the vigil.Code, for programs.
const (
	codeParseError     = jsonrpc.CodeParseError
	codeInvalidRequest = jsonrpc.CodeInvalidRequest
	codeInvalidParams  = jsonrpc.CodeInvalidParams
	codeInternal       = jsonrpc.CodeInternalError

	// codeBadSession is what the TypeScript SDK answers for a missing or unknown
	// Mcp-Session-Id; clients know to re-initialize on it (with HTTP 404).
	codeBadSession = -32000
	// codeUnauthenticated: no agent key, or a wrong one (HTTP 401).
	codeUnauthenticated = -32001
	// codeDenied: policy, a reviewer, a suspended agent or a pinned tool said no.
	codeDenied = -32003
	// codeLimit: a rate limit or budget was reached.
	codeLimit = -32004
	// codeTimeout: an approval expired, or the server took longer than allowed.
	codeTimeout = -32005
	// codeUnavailable: a control step failed closed, or the server is down.
	codeUnavailable = -32006
)

// jsonrpcCode maps a vigil error code to the JSON-RPC code Vigil answers with.
func jsonrpcCode(c vigil.Code) int64 {
	switch c {
	case vigil.EUNAUTHORIZED:
		return codeUnauthenticated
	case vigil.EDENIED, vigil.EFORBIDDEN, vigil.ESUSPENDED:
		return codeDenied
	case vigil.ELIMIT:
		return codeLimit
	case vigil.ETIMEOUT:
		return codeTimeout
	case vigil.EUNAVAILABLE, vigil.EUPSTREAM:
		return codeUnavailable
	case vigil.EINVALID, vigil.ETOOLARGE:
		return codeInvalidParams
	case vigil.ENOTFOUND:
		return codeBadSession
	}
	return codeInternal
}

// vigilError makes the JSON-RPC error for err: its caller-safe message, and its code in
// data.vigil.code.
func vigilError(err error) *jsonrpc.Error {
	code := vigil.ErrorCode(err)
	data, _ := json.Marshal(map[string]any{"vigil": map[string]string{"code": string(code)}})
	return &jsonrpc.Error{Code: jsonrpcCode(code), Message: vigil.ErrorMessage(err), Data: data}
}

// readBody parses a POST body: one JSON-RPC message, or a batch (an array) for the
// 2025-03-26 revision. A body that is not JSON is a parse error; JSON that is not a
// JSON-RPC 2.0 message is an invalid request.
func readBody(body []byte) (msgs []jsonrpc.Message, batch bool, jerr *jsonrpc.Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, &jsonrpc.Error{Code: codeInvalidRequest, Message: "the request body is empty; send a JSON-RPC message"}
	}
	if !json.Valid(body) {
		return nil, false, &jsonrpc.Error{Code: codeParseError, Message: "the request body is not valid JSON"}
	}
	if body[0] != '[' {
		m, err := decodeMessage(body)
		if err != nil {
			return nil, false, &jsonrpc.Error{Code: codeInvalidRequest, Message: err.Error()}
		}
		return []jsonrpc.Message{m}, false, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil || len(raws) == 0 {
		return nil, true, &jsonrpc.Error{Code: codeInvalidRequest, Message: "a batch must be a non-empty array of JSON-RPC messages"}
	}
	for i, r := range raws {
		m, err := decodeMessage(r)
		if err != nil {
			return nil, true, &jsonrpc.Error{Code: codeInvalidRequest, Message: fmt.Sprintf("batch element %d: %v", i, err)}
		}
		msgs = append(msgs, m)
	}
	return msgs, true, nil
}

// decodeMessage decodes one JSON-RPC 2.0 message with a message that says what is
// wrong, checking what the SDK's decoder leaves to its callers.
func decodeMessage(b []byte) (jsonrpc.Message, error) {
	var probe struct {
		Version string           `json:"jsonrpc"`
		ID      *json.RawMessage `json:"id"`
		Method  *json.RawMessage `json:"method"`
		Params  json.RawMessage  `json:"params"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, errors.New("a JSON-RPC message must be a JSON object")
	}
	if probe.Version != "2.0" {
		return nil, errors.New(`a JSON-RPC message must have "jsonrpc": "2.0"`)
	}
	if probe.ID != nil {
		switch t := bytes.TrimSpace(*probe.ID); {
		case len(t) > 0 && (t[0] == '"' || t[0] == '-' || t[0] >= '0' && t[0] <= '9'):
		default:
			return nil, errors.New(`"id" must be a string or a number`)
		}
	}
	if probe.Method != nil {
		var m string
		if err := json.Unmarshal(*probe.Method, &m); err != nil || m == "" {
			return nil, errors.New(`"method" must be a non-empty string`)
		}
		if p := bytes.TrimSpace(probe.Params); len(p) > 0 && p[0] != '{' && p[0] != '[' && !bytes.Equal(p, []byte("null")) {
			return nil, errors.New(`"params" must be an object`)
		}
	}
	m, err := jsonrpc.DecodeMessage(b)
	if err != nil {
		return nil, errors.New("not a JSON-RPC 2.0 request, notification or response")
	}
	return m, nil
}

// encode is jsonrpc.EncodeMessage; the messages Vigil builds always encode.
func encode(m jsonrpc.Message) []byte {
	b, err := jsonrpc.EncodeMessage(m)
	if err != nil {
		// Only a Params or Result that is not valid JSON fails, and both come from
		// decoded messages or json.Marshal.
		b, _ = jsonrpc.EncodeMessage(&jsonrpc.Response{ID: idOf(m), Error: &jsonrpc.Error{Code: codeInternal, Message: "internal error"}})
	}
	return b
}

func idOf(m jsonrpc.Message) jsonrpc.ID {
	switch m := m.(type) {
	case *jsonrpc.Request:
		return m.ID
	case *jsonrpc.Response:
		return m.ID
	}
	return jsonrpc.ID{}
}

// idKey is a map key for a request id: string and number ids never collide.
func idKey(id jsonrpc.ID) string {
	switch v := id.Raw().(type) {
	case string:
		return "s" + v
	case int64:
		return "n" + strconv.FormatInt(v, 10)
	}
	return ""
}

// rawKey is a map key for a JSON value used as an id or token (progress tokens,
// requestId in notifications/cancelled).
func rawKey(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return "s" + v
	case float64:
		return "n" + strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}

// object is a JSON object kept as raw members, so that what Vigil does not touch is
// forwarded byte for byte.
type object map[string]json.RawMessage

func decodeObject(raw json.RawMessage) (object, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return object{}, nil
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	if o == nil {
		o = object{}
	}
	return o, nil
}

func (o object) str(key string) string {
	var s string
	_ = json.Unmarshal(o[key], &s)
	return s
}

func (o object) encode() json.RawMessage {
	b, _ := json.Marshal(map[string]json.RawMessage(o))
	return b
}

// listResult decodes a list answer (tools/list, tasks/list): the result object and
// the raw items of its member key.
func listResult(result json.RawMessage, key string) (object, []json.RawMessage, error) {
	res, err := decodeObject(result)
	if err != nil {
		return nil, nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(res[key], &items); err != nil {
		return nil, nil, err
	}
	return res, items, nil
}

// progressToken returns the progress token a request's params carry in _meta.
func progressToken(params object) json.RawMessage {
	meta, err := decodeObject(params["_meta"])
	if err != nil {
		return nil
	}
	return meta["progressToken"]
}

// withMeta returns params with _meta[key] set to value.
func withMeta(params object, key string, value json.RawMessage) object {
	meta, err := decodeObject(params["_meta"])
	if err != nil {
		meta = object{}
	}
	out := make(object, len(params)+1)
	for k, v := range params {
		out[k] = v
	}
	meta[key] = value
	out["_meta"] = meta.encode()
	return out
}

// metaProtocolVersion is the protocol version a request of the stateless
// 2026-07-28 revision carries in _meta.
func metaProtocolVersion(params json.RawMessage) string {
	p, err := decodeObject(params)
	if err != nil {
		return ""
	}
	meta, err := decodeObject(p["_meta"])
	if err != nil {
		return ""
	}
	return meta.str("io.modelcontextprotocol/protocolVersion")
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("mcpproxy: marshal %T: %v", v, err)) // only fixed Go types reach here
	}
	return b
}

// intID is the id Vigil gives a call upstream. The SDK makes number ids from float64;
// Vigil's counters stay far below 2^53.
func intID(n int64) jsonrpc.ID {
	id, _ := jsonrpc.MakeID(float64(n))
	return id
}

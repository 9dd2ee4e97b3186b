package llmproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// object is a JSON object whose members stay raw, so the fields Vigil does not know
// round-trip untouched when it changes the ones it does.
type object map[string]json.RawMessage

func parseObject(b []byte) (object, error) {
	var o object
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

// set stores v (marshalled) under key.
func (o object) set(key string, v any) {
	b, err := marshal(v)
	if err != nil {
		panic(fmt.Sprintf("llmproxy: marshal %T: %v", v, err)) // only Vigil's own values get here
	}
	o[key] = b
}

// str returns the string member key, or "".
func (o object) str(key string) string {
	var s string
	_ = json.Unmarshal(o[key], &s)
	return s
}

// objects decodes the array member key as objects.
func (o object) objects(key string) []object {
	var out []object
	_ = json.Unmarshal(o[key], &out)
	return out
}

// child decodes the object member key (nil if absent or not an object).
func (o object) child(key string) object {
	var c object
	_ = json.Unmarshal(o[key], &c)
	return c
}

func (o object) bytes() []byte {
	b, _ := marshal(o)
	return b
}

// marshal is json.Marshal without HTML escaping (answers are not HTML, and "<" in a
// model's text must stay "<").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func mustMarshal(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic(fmt.Sprintf("llmproxy: marshal %T: %v", v, err))
	}
	return b
}

// readBody reads a request body, turning a body over the limit into ETOOLARGE.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &vigil.Error{Code: vigil.ETOOLARGE, Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit), Err: err}
		}
		return nil, vigil.Errorf(vigil.EINVALID, "couldn't read the request body")
	}
	return b, nil
}

// decodeRequest decodes body into v with caller-safe errors.
func decodeRequest(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return vigil.Errorf(vigil.EINVALID, "request body is empty; want a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return vigil.Errorf(vigil.EINVALID, "request body is not valid JSON (at byte %d): %s", se.Offset, se.Error())
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "(body)"
			}
			return vigil.Errorf(vigil.EINVALID, "field %q must be %s, not %s", field, web.JSONKind(te.Type), te.Value)
		}
		return vigil.Errorf(vigil.EINVALID, "request body is not valid JSON: %s", err.Error())
	}
	return nil
}

// argsJSON turns a tool call's arguments (a JSON object, or a string holding one)
// into the bytes Flight.ToolCall takes; empty means no arguments.
func argsJSON(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			raw = []byte(s)
		}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return raw
}

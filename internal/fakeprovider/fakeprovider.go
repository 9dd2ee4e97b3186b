// Package fakeprovider is a deterministic stand-in for OpenAI and Anthropic, for
// tests, the demo configuration and the load test. It speaks both wire formats (chat
// completions, responses, embeddings and models; messages), streamed and not, and
// records every request it receives so tests can prove what reached "the provider"
// (masked personal data, Vigil's key rather than the agent's).
//
// The answer echoes the last user message ("You said: …"), or a tool result
// ("Tool result: …"). Magic words in that message script other behaviours:
//
//	call tool NAME with {JSON}   the model proposes a call to NAME with those arguments
//	                             (several phrases make several calls)
//	error NNN                    answer with HTTP status NNN in the API's error shape;
//	                             429 carries "Retry-After: 7"
//	slow DURATION                wait that long (e.g. "slow 300ms") before answering
//
// GET /_fake/requests returns what was received, DELETE /_fake/requests forgets it.
package fakeprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Models are the models the fake serves.
var Models = []string{"fake-gpt", "fake-gpt-mini", "fake-embed", "fake-claude"}

// Options configure a Server.
type Options struct {
	// APIKey, if set, is the key every request must carry (Bearer or x-api-key).
	APIKey string
	// Keep is how many recent requests are kept for /_fake/requests. Default 1000;
	// negative keeps none (load tests).
	Keep int
	// ChunkBytes is the size of streamed text deltas. Default 3, so tokens and
	// personal data are split across events.
	ChunkBytes int
}

// Request is one request the fake received.
type Request struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Header map[string]string `json:"header"`
	Body   json.RawMessage   `json:"body,omitempty"`
}

// Server is the fake provider's HTTP handler. It is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu   sync.Mutex
	reqs []Request
}

// New returns a fake provider.
func New(o Options) *Server {
	if o.Keep == 0 {
		o.Keep = 1000
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 3
	}
	s := &Server{opts: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /v1/responses", s.responses)
	s.mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	s.mux.HandleFunc("POST /v1/messages", s.messages)
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /_fake/requests", s.list)
	s.mux.HandleFunc("DELETE /_fake/requests", s.clear)
	return s
}

// ServeHTTP records the request (except the fake's own endpoints) and answers it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.record(r, body)
		if s.opts.APIKey != "" {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if got == "" {
				got = r.Header.Get("X-Api-Key")
			}
			if got != s.opts.APIKey {
				writeError(w, r, http.StatusUnauthorized, "invalid x-api-key or Bearer key")
				return
			}
		}
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) record(r *http.Request, body []byte) {
	if s.opts.Keep < 0 {
		return
	}
	h := map[string]string{}
	for k, v := range r.Header {
		h[k] = strings.Join(v, ", ")
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Header: h}
	if json.Valid(body) {
		rec.Body = body
	} else if len(body) > 0 {
		rec.Body, _ = json.Marshal(string(body))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, rec)
	if len(s.reqs) > s.opts.Keep {
		s.reqs = append(s.reqs[:0], s.reqs[len(s.reqs)-s.opts.Keep:]...)
	}
}

// Requests returns what the fake received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Reset forgets the received requests.
func (s *Server) Reset() {
	s.mu.Lock()
	s.reqs = nil
	s.mu.Unlock()
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"requests": s.Requests()})
}

func (s *Server) clear(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// script is what the magic words in a prompt ask for.
type script struct {
	reply  string
	calls  []toolCall
	status int
	delay  time.Duration
}

type toolCall struct {
	Name string
	Args string // a JSON object
}

var (
	errorWord = regexp.MustCompile(`\berror (\d{3})\b`)
	slowWord  = regexp.MustCompile(`\bslow(?: (\d+(?:ms|s)))?\b`)
	callWord  = regexp.MustCompile(`call tool ([A-Za-z0-9_.-]+) with `)
)

// scriptFor reads the magic words of the last user message (or tool result).
func scriptFor(last string, isToolResult bool) script {
	sc := script{reply: "You said: " + last}
	if isToolResult {
		sc.reply = "Tool result: " + last
		return sc
	}
	if m := errorWord.FindStringSubmatch(last); m != nil {
		sc.status, _ = strconv.Atoi(m[1])
	}
	if m := slowWord.FindStringSubmatch(last); m != nil {
		sc.delay = 2 * time.Second
		if m[1] != "" {
			if d, err := time.ParseDuration(m[1]); err == nil {
				sc.delay = d
			}
		}
	}
	for _, loc := range callWord.FindAllStringSubmatchIndex(last, -1) {
		name := last[loc[2]:loc[3]]
		dec := json.NewDecoder(strings.NewReader(last[loc[1]:]))
		var args json.RawMessage
		if dec.Decode(&args) != nil || len(args) == 0 || args[0] != '{' {
			args = json.RawMessage("{}")
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, args)
		sc.calls = append(sc.calls, toolCall{Name: name, Args: compact.String()})
	}
	return sc
}

// prelude plays the scripted delay and error. It reports whether the handler should
// go on and answer normally.
func (sc script) prelude(w http.ResponseWriter, r *http.Request) bool {
	if sc.delay > 0 {
		t := time.NewTimer(sc.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		}
	}
	if sc.status != 0 {
		writeError(w, r, sc.status, fmt.Sprintf("scripted error %d", sc.status))
		return false
	}
	return true
}

// tokens is the fake's deterministic token count: words, at least 1.
func tokens(s string) int64 { return int64(max(1, len(strings.Fields(s)))) }

// chunks splits s into pieces of about n bytes on rune boundaries.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i := min(n, len(s))
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers in the error shape of the API the path belongs to.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "7")
	}
	if r.URL.Path == "/v1/messages" {
		typ := map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}[status]
		if typ == "" {
			typ = "api_error"
		}
		writeJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
		return
	}
	typ := map[int]string{400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}[status]
	if typ == "" {
		typ = "server_error"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

// sse writes server-sent events, flushing each.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return &sse{w: w, f: f}
}

func (s *sse) send(name string, v any) {
	var b []byte
	if raw, ok := v.(string); ok {
		b = []byte(raw)
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		b = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	if name != "" {
		fmt.Fprintf(s.w, "event: %s\n", name)
	}
	fmt.Fprintf(s.w, "data: %s\n\n", b)
	if s.f != nil {
		s.f.Flush()
	}
}

// id makes a deterministic id from the request body.
func id(prefix string, body []byte) string {
	h := sha256.Sum256(body)
	return fmt.Sprintf("%s_%x", prefix, h[:8])
}

func decode(r *http.Request, v any) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	return body, json.Unmarshal(body, v)
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	data := make([]map[string]any, 0, len(Models))
	for _, m := range Models {
		data = append(data, map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake", "type": "model", "display_name": m})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false})
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	body, err := decode(r, &req)
	if err != nil {
		writeError(w, r, 400, "invalid JSON body")
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if json.Unmarshal(req.Input, &inputs) != nil {
		writeError(w, r, 400, "input must be a string or an array of strings")
		return
	}
	data := make([]map[string]any, 0, len(inputs))
	var n int64
	for i, in := range inputs {
		if sc := scriptFor(in, false); sc.status != 0 {
			writeError(w, r, sc.status, fmt.Sprintf("scripted error %d", sc.status))
			return
		}
		n += tokens(in)
		h := sha256.Sum256([]byte(in))
		vec := make([]float64, 8)
		for j := range vec {
			vec[j] = float64(binary.BigEndian.Uint16(h[2*j:]))/65535*2 - 1
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": vec})
	}
	_ = body
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": req.Model, "usage": map[string]int64{"prompt_tokens": n, "total_tokens": n}})
}

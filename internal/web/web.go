// Package web is the HTTP plumbing every Vigil surface shares: handlers that return
// errors, one place that renders them (only caller-safe messages leave; the rest is
// logged under a request id), request ids, body limits, panic recovery, access logs
// and JSON helpers.
//
// Surfaces with their own error shapes (the OpenAI and Anthropic routes, MCP) supply
// their own Renderer; everything else uses RenderJSON's {"error":{"code","message"}}.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// HandlerFunc is an HTTP handler that returns its error instead of writing it.
// A handler that has already written its response MUST return nil.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Renderer writes err to w in a surface's own error shape, with the given status.
type Renderer func(w http.ResponseWriter, r *http.Request, status int, err error)

// Errors turns HandlerFuncs into http.Handlers, rendering their errors with Render and
// logging the ones that are not caller-safe.
type Errors struct {
	Log    *slog.Logger
	Render Renderer
}

// Handle adapts h.
func (e Errors) Handle(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			e.Error(w, r, err)
		}
	})
}

// Error renders err. Internal errors are logged with the request id and answered
// "internal error"; caller errors are logged at debug level.
func (e Errors) Error(w http.ResponseWriter, r *http.Request, err error) {
	status := Status(err)
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		log.DebugContext(r.Context(), "request refused", "request_id", RequestID(r.Context()),
			"status", status, "code", vigil.ErrorCode(err), "err", err)
	}
	render := e.Render
	if render == nil {
		render = RenderJSON
	}
	render(w, r, status, err)
}

// statuses maps error codes to HTTP statuses.
var statuses = map[vigil.Code]int{
	vigil.ECONFLICT:     http.StatusConflict,
	vigil.EINTERNAL:     http.StatusInternalServerError,
	vigil.EINVALID:      http.StatusBadRequest,
	vigil.ENOTFOUND:     http.StatusNotFound,
	vigil.EUNAUTHORIZED: http.StatusUnauthorized,
	vigil.EFORBIDDEN:    http.StatusForbidden,
	vigil.ESUSPENDED:    http.StatusForbidden,
	vigil.EDENIED:       http.StatusForbidden,
	vigil.ELIMIT:        http.StatusTooManyRequests,
	vigil.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	vigil.EMETHOD:       http.StatusMethodNotAllowed,
	vigil.EUNAVAILABLE:  http.StatusServiceUnavailable,
	vigil.EUPSTREAM:     http.StatusBadGateway,
	vigil.ETIMEOUT:      http.StatusGatewayTimeout,
}

// Status is the HTTP status for err.
func Status(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	if s, ok := statuses[vigil.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the admin API's error shape.
type ErrorBody struct {
	Error struct {
		Code      vigil.Code `json:"code"`
		Message   string     `json:"message"`
		RequestID string     `json:"request_id,omitempty"`
	} `json:"error"`
}

// RenderJSON writes {"error":{"code","message","request_id"}}.
func RenderJSON(w http.ResponseWriter, r *http.Request, status int, err error) {
	var body ErrorBody
	body.Error.Code = vigil.ErrorCode(err)
	body.Error.Message = vigil.ErrorMessage(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		body.Error.Code = vigil.ETOOLARGE
		body.Error.Message = fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)
	}
	body.Error.RequestID = RequestID(r.Context())
	_ = WriteJSON(w, status, body)
}

// WriteJSON writes v as the JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// JSON served with nosniff is not HTML; keep messages readable ("<admin token>").
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// DecodeJSON reads one JSON object from r's body into v, refusing unknown fields,
// trailing data and oversize bodies, with caller-safe messages that say where.
func DecodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return vigil.Errorf(vigil.EINVALID, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return vigil.Errorf(vigil.EINVALID, "request body holds more than one JSON value")
	}
	return nil
}

// jsonError makes a caller-safe message from an encoding/json error.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return &vigil.Error{Code: vigil.ETOOLARGE, Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit), Err: err}
	case errors.Is(err, io.EOF):
		return vigil.Errorf(vigil.EINVALID, "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return vigil.Errorf(vigil.EINVALID, "request body is truncated JSON")
	case errors.As(err, &se):
		return vigil.Errorf(vigil.EINVALID, "request body is not valid JSON (at byte %d): %s", se.Offset, se.Error())
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		return vigil.Errorf(vigil.EINVALID, "field %q must be %s, not %s", field, JSONKind(te.Type), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return vigil.Errorf(vigil.EINVALID, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return vigil.Errorf(vigil.EINVALID, "request body is not valid JSON: %s", err.Error())
}

// JSONKind names what a Go type accepts in JSON terms ("an object", "a string"), for
// error messages that must not show Go type names to API clients.
func JSONKind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string" // []byte is base64 text
		}
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a JSON value"
}

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// NewID returns a random 128-bit hex id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts caller-supplied ids that are safe to log and echo.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Middleware is the outer wrapping every listener gets: request id, panic recovery,
// body limit and access log, in that order from the outside in.
type Middleware struct {
	Log          *slog.Logger
	MaxBodyBytes int64
	// Metrics, if set, is told about every finished request.
	Metrics func(r *http.Request, status int, elapsed time.Duration)
}

// Wrap returns h with the middleware around it.
func (m Middleware) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = NewID()
		}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		if m.MaxBodyBytes > 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, m.MaxBodyBytes)
		}
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				m.Log.ErrorContext(ctx, "panic serving request", "request_id", id, "method", r.Method,
					"path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !sw.wrote {
					RenderJSON(sw, r, http.StatusInternalServerError, errors.New("panic"))
				}
			}
			elapsed := time.Since(start)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if m.Metrics != nil {
				m.Metrics(r, status, elapsed)
			}
			// The path only, never the query: query strings can carry tokens.
			m.Log.LogAttrs(ctx, slog.LevelInfo, "http", slog.String("request_id", id),
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Int64("bytes", sw.n),
				slog.Duration("elapsed", elapsed))
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter records the status and size of a response. It keeps Flush and
// Unwrap working so streaming (SSE) and http.ResponseController see the real writer.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status = http.StatusOK
		w.wrote = true
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.status = http.StatusOK
			w.wrote = true
		}
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Mux is http.ServeMux whose unknown routes and wrong methods answer in JSON.
type Mux struct {
	*http.ServeMux
	Errors Errors
}

// NewMux returns an empty Mux.
func NewMux(e Errors) *Mux { return &Mux{ServeMux: http.NewServeMux(), Errors: e} }

// HandleFunc registers a HandlerFunc for pattern ("METHOD /path").
func (m *Mux) HandleFunc(pattern string, h HandlerFunc) { m.Handle(pattern, m.Errors.Handle(h)) }

var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// ServeHTTP dispatches, answering 404 or 405 (with Allow) in JSON when nothing matches.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := m.ServeMux.Handler(r); pattern != "" {
		m.ServeMux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, method := range probeMethods {
		if method == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, p := m.ServeMux.Handler(probe); p != "" {
			allow = append(allow, method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		m.Errors.Error(w, r, vigil.Errorf(vigil.EMETHOD, "method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	m.Errors.Error(w, r, vigil.Errorf(vigil.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
}

package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

func serve(t *testing.T, h http.Handler, method, path, body string, hdr map[string]string) (*http.Response, web.ErrorBody, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw := rec.Body.Bytes()
	var eb web.ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return rec.Result(), eb, raw
}

func TestMuxAnswersUnknownRoutesAndMethodsInJSON(t *testing.T) {
	mux := web.NewMux(web.Errors{})
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) error {
		return web.WriteJSON(w, 200, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("DELETE /things/{id}", func(w http.ResponseWriter, r *http.Request) error { return nil })

	resp, _, raw := serve(t, mux, "GET", "/things/7", "", nil)
	if resp.StatusCode != 200 || !bytes.Contains(raw, []byte(`"id":"7"`)) {
		t.Errorf("GET /things/7 = %d %s", resp.StatusCode, raw)
	}
	resp, eb, _ := serve(t, mux, "GET", "/nothing", "", nil)
	if resp.StatusCode != 404 || eb.Error.Code != vigil.ENOTFOUND || !strings.Contains(eb.Error.Message, "/nothing") {
		t.Errorf("unknown route = %d %+v", resp.StatusCode, eb)
	}
	resp, eb, _ = serve(t, mux, "POST", "/things/7", "", nil)
	if resp.StatusCode != 405 || eb.Error.Code != vigil.EMETHOD || resp.Header.Get("Allow") != "GET, DELETE" {
		t.Errorf("wrong method = %d %+v Allow %q", resp.StatusCode, eb, resp.Header.Get("Allow"))
	}
}

func TestErrorsShowOnlyCallerSafeMessages(t *testing.T) {
	var logs bytes.Buffer
	e := web.Errors{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := e.Handle(func(w http.ResponseWriter, r *http.Request) error {
		switch r.URL.Path {
		case "/safe":
			return vigil.Errorf(vigil.ECONFLICT, "already there")
		case "/wrapped":
			return &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "database is unreachable", Err: errors.New("dial tcp 10.0.0.7:5432: secret-host")}
		}
		return errors.New("pq: password authentication failed for user admin")
	})
	cases := []struct {
		path   string
		status int
		msg    string
	}{
		{"/safe", 409, "already there"},
		{"/wrapped", 503, "database is unreachable"},
		{"/internal", 500, "internal error"},
	}
	for _, c := range cases {
		resp, eb, raw := serve(t, web.Middleware{Log: slog.New(slog.DiscardHandler)}.Wrap(h), "GET", c.path, "", nil)
		if resp.StatusCode != c.status || eb.Error.Message != c.msg || eb.Error.RequestID == "" {
			t.Errorf("%s = %d %+v", c.path, resp.StatusCode, eb)
		}
		if bytes.Contains(raw, []byte("password")) || bytes.Contains(raw, []byte("secret-host")) {
			t.Errorf("%s leaked internal details: %s", c.path, raw)
		}
	}
	if !strings.Contains(logs.String(), "password authentication failed") {
		t.Error("the internal error was not logged for the operator")
	}
}

func TestDecodeJSON(t *testing.T) {
	type in struct {
		Name  string         `json:"name"`
		Count int            `json:"count"`
		Args  map[string]any `json:"args"`
	}
	cases := []struct {
		body, ct, want string
		code           vigil.Code
	}{
		{``, "", "empty", vigil.EINVALID},
		{`{"name":`, "", "truncated", vigil.EINVALID},
		{`{"name":"a"} {}`, "", "more than one JSON value", vigil.EINVALID},
		{`{"name":"a","extra":1}`, "", `unknown field "extra"`, vigil.EINVALID},
		{`{"count":"many"}`, "", `field "count" must be a whole number, not string`, vigil.EINVALID},
		{`{"args":[1]}`, "", `field "args" must be an object, not array`, vigil.EINVALID},
		{`{nope}`, "", "not valid JSON (at byte", vigil.EINVALID},
		{`{"name":"a"}`, "text/plain", "Content-Type must be application/json", vigil.EINVALID},
		{`{"name":"` + strings.Repeat("x", 100) + `"}`, "", "larger than the limit of 50 bytes", vigil.ETOOLARGE},
	}
	for _, c := range cases {
		req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		req.Body = http.MaxBytesReader(httptest.NewRecorder(), req.Body, 50)
		var v in
		err := web.DecodeJSON(req, &v)
		if vigil.ErrorCode(err) != c.code || !strings.Contains(vigil.ErrorMessage(err), c.want) {
			t.Errorf("DecodeJSON(%q) = %v; want %s containing %q", c.body, err, c.code, c.want)
		}
	}
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"ok","count":2}`))
	var v in
	if err := web.DecodeJSON(req, &v); err != nil || v.Name != "ok" || v.Count != 2 {
		t.Errorf("valid body: %+v, %v", v, err)
	}
}

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	var seen struct {
		status int
		route  string
	}
	mux := web.NewMux(web.Errors{})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		w.Write(b)
		return nil
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) error { panic("boom") })
	h := web.Middleware{
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), MaxBodyBytes: 16,
		Metrics: func(r *http.Request, status int, _ time.Duration) { seen.status, seen.route = status, r.Pattern },
	}.Wrap(mux)

	resp, _, _ := serve(t, h, "POST", "/echo?token=s3cr3t", "hi", map[string]string{"X-Request-Id": "abc-123"})
	if resp.Header.Get("X-Request-Id") != "abc-123" || seen.route != "POST /echo" || seen.status != 200 {
		t.Errorf("request id %q, metrics %+v", resp.Header.Get("X-Request-Id"), seen)
	}
	resp, _, _ = serve(t, h, "POST", "/echo", "hi", map[string]string{"X-Request-Id": "bad id\nwith newline"})
	if id := resp.Header.Get("X-Request-Id"); len(id) != 32 {
		t.Errorf("an unsafe caller id was echoed instead of replaced: %q", id)
	}
	resp, _, _ = serve(t, h, "POST", "/echo", strings.Repeat("x", 40), nil)
	if resp.StatusCode != 500 && resp.StatusCode != 413 {
		t.Errorf("oversize body through the middleware = %d", resp.StatusCode)
	}
	resp, eb, _ := serve(t, h, "GET", "/panic", "", nil)
	if resp.StatusCode != 500 || eb.Error.Message != "internal error" {
		t.Errorf("panic = %d %+v", resp.StatusCode, eb)
	}
	if !strings.Contains(logs.String(), "panic serving request") || strings.Contains(logs.String(), "s3cr3t") {
		t.Errorf("logs: panic not logged, or the query string was:\n%s", logs.String())
	}
}

package mcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// rpcError is an HTTP-level refusal answered with a JSON-RPC error body, so MCP
// clients show its message.
type rpcError struct {
	status int
	id     jsonrpc.ID
	err    *jsonrpc.Error
}

func (e *rpcError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.err.Message) }

// Unwrap gives the refusal a vigil code of its status's class, so web.Errors logs a
// client's mistake quietly and a server-side failure loudly.
func (e *rpcError) Unwrap() error {
	code := vigil.EINVALID
	switch {
	case e.status == http.StatusNotFound:
		code = vigil.ENOTFOUND
	case e.status >= 500:
		code = vigil.EUNAVAILABLE
	}
	return &vigil.Error{Code: code, Message: e.err.Message}
}

func refuse(status int, code int64, format string, args ...any) *rpcError {
	return &rpcError{status: status, err: &jsonrpc.Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// render writes err as a JSON-RPC error response with the matching HTTP status.
func render(w http.ResponseWriter, r *http.Request, status int, err error) {
	var re *rpcError
	if !errors.As(err, &re) {
		re = &rpcError{status: status, err: vigilError(err)}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			re.err = &jsonrpc.Error{Code: codeInvalidRequest, Message: fmt.Sprintf("the request body is larger than the limit of %d bytes", mbe.Limit)}
		}
	}
	if re.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-mcp"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(re.status)
	w.Write(encode(&jsonrpc.Response{ID: re.id, Error: re.err}))
}

// Register adds /mcp/{server} (POST, GET, DELETE) to mux.
func (g *Gateway) Register(mux *web.Mux) {
	e := web.Errors{Log: g.log, Render: render}
	mux.Handle("POST /mcp/{server}", e.Handle(g.handlePost))
	mux.Handle("GET /mcp/{server}", e.Handle(g.handleGet))
	mux.Handle("DELETE /mcp/{server}", e.Handle(g.handleDelete))
}

// resolve authenticates the agent and finds the server of a request.
func (g *Gateway) resolve(r *http.Request) (*server, vigil.Actor, error) {
	secret := auth.FromHeader(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	if secret == "" {
		return nil, vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "missing API key: send your Vigil agent key as Authorization: Bearer vk_…")
	}
	actor, err := g.auth.AuthenticateAgent(r.Context(), secret)
	if err != nil {
		return nil, vigil.Actor{}, err
	}
	name := r.PathValue("server")
	srv := g.servers[name]
	if srv == nil {
		return nil, vigil.Actor{}, refuse(http.StatusNotFound, codeInvalidRequest, "no MCP server named %q; this gateway serves: %s", name, g.serverNames())
	}
	return srv, actor, nil
}

// accepts reports whether an Accept header admits each of the media types.
func accepts(header []string, types ...string) bool {
	var got []string
	for _, h := range header {
		for _, part := range strings.Split(h, ",") {
			mt, _, _ := strings.Cut(part, ";")
			got = append(got, strings.ToLower(strings.TrimSpace(mt)))
		}
	}
	for _, t := range types {
		major, _, _ := strings.Cut(t, "/")
		ok := false
		for _, g := range got {
			if g == t || g == "*/*" || g == major+"/*" {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (g *Gateway) handlePost(w http.ResponseWriter, r *http.Request) error {
	srv, actor, err := g.resolve(r)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return refuse(http.StatusUnsupportedMediaType, codeInvalidRequest, "Content-Type must be application/json")
	}
	if !accepts(r.Header.Values("Accept"), "application/json", "text/event-stream") {
		return refuse(http.StatusNotAcceptable, codeInvalidRequest, "Accept must list both application/json and text/event-stream")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return refuse(http.StatusRequestEntityTooLarge, codeInvalidRequest, "the request body is larger than the limit of %d bytes", mbe.Limit)
		}
		return refuse(http.StatusBadRequest, codeInvalidRequest, "couldn't read the request body")
	}
	msgs, batch, jerr := readBody(body)
	if jerr != nil {
		return &rpcError{status: http.StatusBadRequest, err: jerr}
	}
	version := r.Header.Get(hdrVersion)
	if batch && version >= "2025-06-18" {
		return refuse(http.StatusBadRequest, codeInvalidRequest, "JSON-RPC batches are not part of protocol %s; send one message per request", version)
	}

	var s *session
	sid := r.Header.Get(hdrSession)
	first, _ := msgs[0].(*jsonrpc.Request)
	switch {
	case sid != "":
		if s = g.lookup(srv, sid, actor); s == nil {
			return refuse(http.StatusNotFound, codeBadSession, "session not found: it ended or expired; start a new one with initialize")
		}
	case !batch && first != nil && first.Method == "initialize":
		if s, err = g.openSession(srv, actor); err != nil {
			return err
		}
		w.Header().Set(hdrSession, s.id)
		var p struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		_ = json.Unmarshal(first.Params, &p)
		version = p.ProtocolVersion
	case isStateless(version, msgs):
		if s, err = g.openExchange(r.Context(), srv, actor); err != nil {
			return err
		}
		defer g.closeSession(s)
	default:
		return refuse(http.StatusBadRequest, codeBadSession, "Bad Request: send the Mcp-Session-Id header of your session, or start one with initialize")
	}
	s.touch()
	if version == "" {
		s.mu.Lock()
		version = s.version
		s.mu.Unlock()
	}

	// Register the calls before anything is forwarded, so their responses find them.
	var keys []string
	seen := map[string]bool{}
	for _, m := range msgs {
		if req, ok := m.(*jsonrpc.Request); ok && req.IsCall() {
			k := idKey(req.ID)
			if seen[k] {
				return &rpcError{status: http.StatusBadRequest, id: req.ID, err: &jsonrpc.Error{Code: codeInvalidRequest, Message: "the batch repeats a request id"}}
			}
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		for _, m := range msgs {
			s.fromClient(m, nil)
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	st := newStream(newSessionID(), !s.stateless, !s.stateless && version >= "2025-11-25", s.stateless, keys)
	st.seq = s.streamSeq.Add(1)
	calls := make([]*clientCall, len(msgs))
	for i, m := range msgs {
		if req, ok := m.(*jsonrpc.Request); ok && req.IsCall() {
			cc, err := s.register(st, req)
			if err != nil {
				for _, c := range calls {
					if c != nil {
						s.finish(c)
					}
				}
				if errors.Is(err, errSessionClosed) {
					return refuse(http.StatusNotFound, codeBadSession, "session not found: it ended; start a new one with initialize")
				}
				return &rpcError{status: http.StatusBadRequest, id: req.ID, err: &jsonrpc.Error{Code: codeInvalidRequest, Message: err.Error()}}
			}
			calls[i] = cc
		}
	}
	s.mu.Lock()
	s.streams[st.id] = st
	s.mu.Unlock()

	released := st.attach(w, -1)
	for i, m := range msgs {
		s.fromClient(m, calls[i])
	}
	g.hold(r.Context(), st, released, s)
	st.detach(w)
	s.touch()
	return nil
}

// isStateless reports whether a sessionless POST speaks the 2026-07-28 revision.
func isStateless(header string, msgs []jsonrpc.Message) bool {
	if header >= statelessV1 {
		return true
	}
	if req, ok := msgs[0].(*jsonrpc.Request); ok {
		return metaProtocolVersion(req.Params) >= statelessV1
	}
	return false
}

// hold keeps a request attached to its stream until the stream releases it, the
// client goes away or the session ends, writing keep-alive comments meanwhile.
func (g *Gateway) hold(ctx context.Context, st *stream, released <-chan struct{}, s *session) {
	t := time.NewTicker(keepaliveEvery)
	defer t.Stop()
	for {
		select {
		case <-released:
			return
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
			st.keepalive()
		}
	}
}

func (g *Gateway) handleGet(w http.ResponseWriter, r *http.Request) error {
	srv, actor, err := g.resolve(r)
	if err != nil {
		return err
	}
	if !accepts(r.Header.Values("Accept"), "text/event-stream") {
		return refuse(http.StatusNotAcceptable, codeInvalidRequest, "Accept must list text/event-stream")
	}
	sid := r.Header.Get(hdrSession)
	if sid == "" {
		if r.Header.Get(hdrVersion) >= statelessV1 {
			w.Header().Set("Allow", "POST")
			return refuse(http.StatusMethodNotAllowed, codeInvalidRequest, "protocol %s has no GET stream; use subscriptions/listen", r.Header.Get(hdrVersion))
		}
		return refuse(http.StatusBadRequest, codeBadSession, "Bad Request: GET needs the Mcp-Session-Id header of your session")
	}
	s := g.lookup(srv, sid, actor)
	if s == nil {
		return refuse(http.StatusNotFound, codeBadSession, "session not found: it ended or expired; start a new one with initialize")
	}
	s.touch()
	st, after := s.standalone, -1
	if last := r.Header.Get(hdrLastID); last != "" {
		id, idx, ok := parseEventID(last)
		if !ok {
			return refuse(http.StatusBadRequest, codeInvalidRequest, "malformed Last-Event-ID %q", last)
		}
		after = idx
		if id != "" {
			s.mu.Lock()
			st = s.streams[id]
			s.mu.Unlock()
			if st == nil {
				return refuse(http.StatusNotFound, codeInvalidRequest, "no stream to resume for Last-Event-ID %q: it finished or was forgotten", last)
			}
		}
	} else if st.live() {
		return refuse(http.StatusConflict, codeInvalidRequest, "Conflict: this session already has a GET stream open")
	}
	released := st.attach(w, after)
	g.hold(r.Context(), st, released, s)
	st.detach(w)
	s.retire(st)
	s.touch()
	return nil
}

func (g *Gateway) handleDelete(w http.ResponseWriter, r *http.Request) error {
	srv, actor, err := g.resolve(r)
	if err != nil {
		return err
	}
	sid := r.Header.Get(hdrSession)
	if sid == "" {
		return refuse(http.StatusBadRequest, codeBadSession, "Bad Request: DELETE needs the Mcp-Session-Id header of the session to end")
	}
	s := g.lookup(srv, sid, actor)
	if s == nil {
		return refuse(http.StatusNotFound, codeBadSession, "session not found: it ended or expired")
	}
	g.closeSession(s)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

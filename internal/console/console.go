// Package console is the reviewer console: server-rendered pages (html/template,
// embedded assets) where named users sign in, see held calls arrive live (server-sent
// events), approve or deny them with a reason, and pull the kill switch on an agent,
// an AI system or everything.
//
// It is a hardened browser surface in the manner of tailscale's safeweb: its own mux;
// a strict Content-Security-Policy (no inline script or style: one external script
// file); every state change is a POST that must pass both cross-origin protection
// (Sec-Fetch-Site / Origin) and a CSRF token bound to the session; session cookies are
// HttpOnly, SameSite=Strict and Secure behind https; pages are never cached.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// CSP is the Content-Security-Policy of every console response: scripts, styles and
// connections only from this origin, no inline code, no framing, forms post only
// here.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Paths the console serves on the main listener. They never overlap /api, /v1,
// /mcp, /ledger, /healthz, /readyz or /metrics.
var Paths = []string{"/{$}", "/signin", "/signout", "/approvals", "/approvals/", "/kill-switch", "/kill-switch/", "/events", "/assets/"}

// Options configure a Console.
type Options struct {
	Log       *slog.Logger
	Users     *auth.Users
	Approvals *oversight.Service
	Inventory *inventory.Service
	// Secure marks cookies Secure and sends HSTS: set it when people reach the
	// console over https (public_url starts with https://).
	Secure bool
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Console serves the reviewer console.
type Console struct {
	opts    Options
	pages   map[string]*template.Template
	card    *template.Template
	handler http.Handler
	limiter *limiter

	closeOnce sync.Once
	closed    chan struct{} // ends live streams at shutdown
}

// New parses the templates and builds the console's handler.
func New(opts Options) (*Console, error) {
	if opts.Users == nil || opts.Approvals == nil || opts.Inventory == nil {
		return nil, errors.New("console: users, approvals and inventory are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Console{opts: opts, limiter: newLimiter(), closed: make(chan struct{})}
	var err error
	if c.pages, c.card, err = parseTemplates(opts.Now); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.handle(c.home))
	mux.HandleFunc("GET /signin", c.handle(c.signinPage))
	mux.HandleFunc("POST /signin", c.handle(c.signin))
	mux.HandleFunc("POST /signout", c.handle(c.user(c.signout)))
	mux.HandleFunc("GET /approvals", c.handle(c.user(c.approvalsPage)))
	mux.HandleFunc("GET /approvals/{id}", c.handle(c.user(c.approvalPage)))
	mux.HandleFunc("GET /approvals/{id}/card", c.handle(c.user(c.cardFragment)))
	mux.HandleFunc("POST /approvals/{id}/{verdict}", c.handle(c.user(c.decide)))
	mux.HandleFunc("GET /kill-switch", c.handle(c.user(c.killSwitchPage)))
	mux.HandleFunc("POST /kill-switch/{scope}/{id}/{action}", c.handle(c.user(c.switchAction)))
	mux.HandleFunc("POST /kill-switch/all/{action}", c.handle(c.user(c.haltAction)))
	mux.HandleFunc("GET /events", c.handle(c.user(c.events)))
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))

	// Cross-origin POSTs are refused before anything else looks at them.
	cop := http.NewCrossOriginProtection()
	c.handler = c.secure(cop.Handler(c.notFound(mux)))
	return c, nil
}

// parseTemplates parses the pages, each with the layout and the card, and returns
// them by name with the card alone (for live fragments). now is the clock relative
// times are measured from.
func parseTemplates(now func() time.Time) (map[string]*template.Template, *template.Template, error) {
	funcs := template.FuncMap{"json": prettyJSON, "subject": oversight.Request.Subject, "ts": timestamp, "approvals": approvalsSoFar,
		"exact": exact, "rel": func(t time.Time) string { return relative(t, now()) }, "expiresIn": func(t time.Time) string { return expiresIn(t, now()) },
		"who": who, "isSystem": isSystem, "describe": describe, "via": via, "sessionKind": sessionKind, "shortID": shortID,
		"earlierVotes": earlierVotes,
		"cardOf": func(r oversight.Request, csrf string, u *vigil.Actor) cardData {
			d := cardData{Request: r, CSRF: csrf}
			if u != nil {
				d.User = *u
			}
			return d
		}}
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/card.html")
	if err != nil {
		return nil, nil, fmt.Errorf("console: couldn't parse templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, page := range []string{"signin", "approvals", "approval", "killswitch", "notfound"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+page+".html")
		if err != nil {
			return nil, nil, fmt.Errorf("console: couldn't parse %s: %w", page, err)
		}
		pages[page] = t
	}
	return pages, base.Lookup("card"), nil
}

// Register mounts the console at Paths on mux (the main listener's).
func (c *Console) Register(mux *web.Mux) {
	for _, p := range Paths {
		mux.Handle(p, c.handler)
	}
}

// Handler is the console on its own, for tests.
func (c *Console) Handler() http.Handler { return c.handler }

// Close ends the live event streams so a graceful shutdown need not wait for them.
func (c *Console) Close() { c.closeOnce.Do(func() { close(c.closed) }) }

// secure sets the security headers every console response carries.
func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if c.opts.Secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// notFound renders the console's own 404 for console paths nothing matches.
func (c *Console) notFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			_ = c.pages["notfound"].ExecuteTemplate(w, "layout", page{Title: "Not found"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// handlerFunc is a console handler; errors are rendered as a page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (c *Console) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			c.fail(w, r, err)
		}
	}
}

// fail renders err: only caller-safe messages are shown; the rest is logged.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := web.Status(err)
	if status >= 500 {
		c.opts.Log.ErrorContext(r.Context(), "console request failed", "request_id", web.RequestID(r.Context()), "path", r.URL.Path, "err", err)
	}
	if vigil.ErrorCode(err) == vigil.EUNAUTHORIZED {
		// Pages send people to sign in; the live stream and fragments just say no.
		if r.URL.Path == "/events" || strings.HasSuffix(r.URL.Path, "/card") {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "/signin?next="+urlEscape(r.URL.Path), http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = c.pages["notfound"].ExecuteTemplate(w, "layout", page{Title: http.StatusText(status), Error: vigil.ErrorMessage(err)})
}

// session is the signed-in user of a request.
type session struct {
	actor  vigil.Actor
	secret string
}

type ctxKey int

const sessionKey ctxKey = 0

// user wraps h so it runs only for a signed-in user; POSTs must also carry the
// session's CSRF token.
func (c *Console) user(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ck, err := r.Cookie(c.cookieName())
		if err != nil {
			return vigil.Errorf(vigil.EUNAUTHORIZED, "sign in first")
		}
		actor, err := c.opts.Users.Authenticate(r.Context(), ck.Value)
		if err != nil {
			return err
		}
		if r.Method == http.MethodPost && !c.opts.Users.CheckCSRF(ck.Value, r.PostFormValue("csrf")) {
			return vigil.Errorf(vigil.EFORBIDDEN, "this form has expired or did not come from the console; reload the page and try again")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), sessionKey, session{actor: actor, secret: ck.Value})))
	}
}

func current(r *http.Request) session {
	s, _ := r.Context().Value(sessionKey).(session)
	return s
}

func (c *Console) cookieName() string {
	if c.opts.Secure {
		return "__Host-vigil-session"
	}
	return "vigil-session"
}

func (c *Console) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.opts.Secure, SameSite: http.SameSiteStrictMode,
	})
}

// page is what every template gets.
type page struct {
	Title  string
	User   *vigil.Actor
	CSRF   string
	Flash  flash
	Error  string
	Next   string
	Active string
	Data   any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) error {
	if s := current(r); s.secret != "" {
		p.User, p.CSRF = &s.actor, c.opts.Users.CSRFToken(s.secret)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.opts.Log.Error("couldn't render a console page", "page", name, "err", err)
	}
	return nil
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/approvals", http.StatusSeeOther)
	return nil
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) error {
	return c.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) error {
	name, password := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	key := name + "\x00" + clientIP(r)
	if !c.limiter.allow(key, c.opts.Now()) {
		return c.render(w, r, http.StatusTooManyRequests, "signin", page{Title: "Sign in", Next: next,
			Error: "Too many failed sign-ins. Wait a few minutes and try again."})
	}
	secret, _, err := c.opts.Users.SignIn(r.Context(), name, password)
	if vigil.ErrorCode(err) == vigil.EUNAUTHORIZED {
		c.limiter.fail(key, c.opts.Now())
		return c.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in", Next: next, Error: vigil.ErrorMessage(err)})
	}
	if err != nil {
		return err
	}
	c.limiter.reset(key)
	lifetime := c.opts.Users.SessionLifetime
	if lifetime <= 0 {
		lifetime = auth.DefaultSessionLifetime
	}
	c.setCookie(w, secret, int(lifetime.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request) error {
	if err := c.opts.Users.SignOut(r.Context(), current(r).secret); err != nil {
		return err
	}
	c.setCookie(w, "", -1)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}

// safeNext keeps redirects after sign-in on this site: a local absolute path only.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/approvals"
	}
	return next
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndex(host, ":"); i > 0 {
		host = host[:i]
	}
	return host
}

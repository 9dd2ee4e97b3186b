package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/vigil-gateway/vigil/internal/fakeprovider"
)

const fakeProviderUsage = `Run a deterministic stand-in for the OpenAI and Anthropic APIs, for the demo
configuration, tests and the load test. It answers "You said: <last user message>";
magic words script it: "call tool NAME with {JSON}", "error 429", "slow 300ms".
GET /_fake/requests shows what it received (so you can see what reached "the
provider"); DELETE /_fake/requests forgets it.

Point a provider at it with base_url: http://ADDR/v1 (both types).`

func runFakeProvider(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "fake-provider", "[--listen ADDR] [--api-key-env VAR] [--keep N]", fakeProviderUsage)
	listen := fs.String("listen", "127.0.0.1:8787", "`ADDR` to listen on")
	keyEnv := fs.String("api-key-env", "", "environment `VAR` holding the key callers must send (default: none required)")
	keep := fs.Int("keep", 1000, "how many recent requests to keep for /_fake/requests (negative: none)")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	key := ""
	if *keyEnv != "" {
		if key = env.Getenv(*keyEnv); key == "" {
			return fmt.Errorf("environment variable %s is empty or unset", *keyEnv)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: fakeprovider.New(fakeprovider.Options{APIKey: key, Keep: *keep}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(env.Stdout, "fake provider listening on http://%s/v1\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

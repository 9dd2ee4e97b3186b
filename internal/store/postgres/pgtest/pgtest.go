// Package pgtest gives tests a fresh PostgreSQL schema of their own, so runs and
// parallel tests never see each other's data. Tests that need PostgreSQL call DSN,
// which skips the test when VIGIL_TEST_POSTGRES is unset (CI always sets it).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable holding the test server's DSN.
const EnvVar = "VIGIL_TEST_POSTGRES"

// DSN creates a fresh schema on the VIGIL_TEST_POSTGRES server and returns a DSN whose
// search_path selects it. The schema is dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, but CI must run the PostgreSQL tests", EnvVar)
		}
		t.Skipf("%s is not set; skipping PostgreSQL test", EnvVar)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("couldn't connect to %s: %v", EnvVar, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("couldn't create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("couldn't drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("couldn't drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
)

// TestMain lets the test binary be a second (and third) Vigil process appending to
// the same schema: see storetest.StartChild.
func TestMain(m *testing.M) {
	if os.Getenv(storetest.ChildEnv) != "" {
		db, err := postgres.Open(context.Background(), os.Getenv("VIGIL_CHILD_DSN"))
		if err == nil {
			err = storetest.RunChild(db.Ledger())
			db.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

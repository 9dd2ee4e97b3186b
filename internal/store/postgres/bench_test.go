package postgres_test

import (
	"fmt"
	"testing"

	"github.com/vigil-gateway/vigil/internal/store/storetest"
)

// BenchmarkLedgerAppend: committed appends with 1 to 256 concurrent appenders. Run
// with -benchtime 20000x or more so group commit reaches a steady state.
func BenchmarkLedgerAppend(b *testing.B) {
	for _, c := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("appenders=%d", c), func(b *testing.B) {
			storetest.BenchmarkAppend(b, openTest(b).Ledger(), c)
		})
	}
}

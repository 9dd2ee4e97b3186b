package storetest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// BenchBody is the body of each benchmark event: 1 KiB, about a short prompt.
var BenchBody = make([]byte, 1024)

// BenchmarkAppend measures durable appends through a Log on store from
// concurrency goroutines, each waiting for its receipt before the next append (as a
// gateway request does). It reports appends/s and the p50/p99/max latency of one
// Record in microseconds, and the process's CPU time per append (the database
// server's, for PostgreSQL, is not included).
func BenchmarkAppend(b *testing.B, store ledger.Store, concurrency int) {
	ctx := context.Background()
	opts := LedgerOptions(b)
	l, err := ledger.Open(ctx, store, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				_, err := l.Record(ctx, vigil.Event{Type: "bench.append", Actor: "agent:bench", AgentID: "a" + strconv.Itoa(w),
					SessionID: "s" + strconv.Itoa(w), SessionSeq: i + 1, Attrs: map[string]string{"model": "gpt-x"}, Body: BenchBody})
				lat[i] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/append")
	b.ReportMetric(0, "ns/op") // appends/s says it; ns/op of a concurrent loop misleads
}

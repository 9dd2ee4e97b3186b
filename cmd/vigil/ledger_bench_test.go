package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkVerify times "vigil verify --data DIR" (the whole command: open, read,
// recompute, check signatures and bodies) over a SQLite ledger of
// VIGIL_BENCH_ENTRIES entries (default 1,000,000) with 1 KiB bodies and a
// checkpoint every 10,000 entries. Building the ledger is not timed. Run with
// -benchtime 1x: make bench-ledger does. VIGIL_BENCH_DIR keeps the ledger.
func BenchmarkVerify(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("VIGIL_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	// VIGIL_BENCH_DIR keeps the ledger between runs (it takes longer to build than
	// to verify): it is built there once and reused while it has n entries.
	dir := os.Getenv("VIGIL_BENCH_DIR")
	if _, err := os.Stat(filepath.Join(dir, sqliteFile)); dir == "" || err != nil {
		d := newTestDataDir(b)
		d.appendBulk(b, n, 10_000, make([]byte, 1024))
		if dir == "" {
			dir = d.dir
		} else if err := os.CopyFS(dir, os.DirFS(d.dir)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		code, out, errOut := runOffline(b, "verify", "--data", dir)
		if code != 0 || !strings.Contains(out, "intact: "+strconv.Itoa(n)+" entries") {
			b.Fatalf("verify = %d, %q, %q", code, out, errOut)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

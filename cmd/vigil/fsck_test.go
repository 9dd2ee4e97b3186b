package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
)

// fsck builds Tessera's fsck (a tool dependency in go.mod, so it is in the module
// cache after "go mod download" and builds offline; it is not linked into vigil)
// once per test binary and returns its path. The binary goes to one fixed place in
// the temporary directory (built beside it and renamed, so concurrent test runs
// never see half a file), not a new directory per run.
var fsck = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(os.TempDir(), "vigil-test-tools")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "fsck-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	out, err := exec.Command("go", "build", "-o", tmp.Name(), "github.com/transparency-dev/tessera/cmd/fsck").CombinedOutput()
	if err != nil {
		return "", &buildError{err, string(out)}
	}
	bin := filepath.Join(dir, "fsck")
	return bin, os.Rename(tmp.Name(), bin)
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build fsck: " + e.err.Error() + "\n" + e.out }

// runFsck runs Tessera's fsck on an export directory. fsck v1.0.4 exits 0 even when
// the check fails, so success is its own "Successfully fsck'd" line.
func runFsck(t *testing.T, dir string) (bool, string) {
	t.Helper()
	bin, err := fsck()
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--storage_url=file://"+abs+"/", "--public_key="+filepath.Join(abs, ledger.ExportPublicKey), "--ui=false", "--N=2")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Logf("fsck did not finish in time:\n%s", out)
		return false, string(out)
	}
	ok := err == nil && strings.Contains(string(out), "Successfully fsck'd log with size") && !strings.Contains(string(out), "fsck failed")
	return ok, string(out)
}

func TestTesseraFsckAcceptsExport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Tessera's fsck")
	}
	d := newTestDataDir(t)
	// 70,000 entries span three levels of tiles, with partial tiles at each.
	d.appendFast(t, 70_000)
	exp := filepath.Join(t.TempDir(), "export")
	if code, out, errOut := runOffline(t, "ledger", "export", "--data", d.dir, exp); code != 0 {
		t.Fatalf("ledger export = %d, %q, %q", code, out, errOut)
	}
	if ok, out := runFsck(t, exp); !ok {
		t.Fatalf("Tessera's fsck rejects the export:\n%s", out)
	}
	// fsck checks the checkpoint, every tile and every bundle: a flipped byte in
	// each kind is caught by it as by vigil verify. (A failing fsck is not the same
	// as a test that cannot fail: the unflipped export above must pass it.)
	for _, f := range []string{"checkpoint", "tile/0/255", "tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1", "tile/entries/100", "tile/entries/273.p/112"} {
		// fsck v1.0.4 hangs instead of failing when a full bundle's length prefix
		// is corrupt (seen with tile/entries/100); vigil verify still checks it.
		withFsck := f != "tile/entries/100"
		t.Run(f, func(t *testing.T) {
			p := filepath.Join(exp, f)
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(p, orig, 0o644)
			b := append([]byte(nil), orig...)
			b[len(b)/2] ^= 0x20
			os.WriteFile(p, b, 0o644)
			if withFsck {
				if ok, out := runFsck(t, exp); ok {
					t.Errorf("fsck accepts the export with a byte of %s flipped:\n%s", f, out)
				}
			}
			if code, out, _ := runOffline(t, "verify", "--export", exp); code == 0 {
				t.Errorf("vigil verify accepts the export with a byte of %s flipped: %q", f, out)
			}
		})
	}
}

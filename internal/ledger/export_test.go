package ledger

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func exportTestLedger(t *testing.T, withBodies bool) (testKeys, string, *Report) {
	t.Helper()
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	rs := fill(t, l, 600, 250)
	if _, err := l.Erase(ctx, "user:dpo", rs[10].ID, "request"); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Export(ctx, st, dir, ExportOptions{PublicKey: k.vkey, WithBodies: withBodies, BodyKey: k.bodyKey})
	if err != nil {
		t.Fatal(err)
	}
	// 601 entries: tile/0 has 2 full tiles and a partial of 89; tile/1 one partial of 2.
	want := ExportResult{Size: 601, Tiles: 4, Bundles: 3, Checkpoints: 4}
	if withBodies {
		want.Bodies = 600 // 599 events and the erasure's reason
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Export (-want +got):\n%s", diff)
	}
	rep, err := Verify(ctx, st, k.verifyOptions())
	if err != nil || !rep.OK() {
		t.Fatalf("the source does not verify: %+v, %v", rep, err)
	}
	return k, dir, rep
}

func TestExportVerifies(t *testing.T) {
	for _, withBodies := range []bool{false, true} {
		k, dir, srcRep := exportTestLedger(t, withBodies)
		o := k.verifyOptions()
		o.BodyKey = nil // the auditor has only the public key
		rep, err := Verify(context.Background(), OpenExport(os.DirFS(dir)), o)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("export (bodies %v) does not verify: %s", withBodies, rep.Summary())
		}
		want := *srcRep
		want.BodiesChecked = withBodies
		if !withBodies {
			want.Bodies, want.Withheld = 0, nil
		}
		if diff := cmp.Diff(&want, rep); diff != "" {
			t.Errorf("export report (bodies %v) differs from the source's (-source +export):\n%s", withBodies, diff)
		}
		pub, err := os.ReadFile(filepath.Join(dir, ExportPublicKey))
		if err != nil || string(pub) != k.vkey {
			t.Errorf("%s = %q, %v; want the verifier key %q", ExportPublicKey, pub, err, k.vkey)
		}
	}
}

func TestExportByteFlipFailsVerification(t *testing.T) {
	k, dir, _ := exportTestLedger(t, true)
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	kinds := map[string]bool{}
	for _, f := range files {
		if f == ExportPublicKey {
			continue // the verifier pins the key it is given; cmd/vigil tests a bad key file
		}
		kind := strings.Split(f, "/")[0]
		if kind == "tile" {
			kind = strings.Join(strings.Split(f, "/")[:2], "/")
		}
		kinds[kind] = true
		for _, where := range []string{"start", "middle", "end"} {
			t.Run(f+"/"+where, func(t *testing.T) {
				orig, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				defer os.WriteFile(filepath.Join(dir, f), orig, 0o644)
				i := map[string]int{"start": 0, "middle": len(orig) / 2, "end": len(orig) - 2}[where]
				flipped := slices.Clone(orig)
				flipped[i] ^= 0x01
				if err := os.WriteFile(filepath.Join(dir, f), flipped, 0o644); err != nil {
					t.Fatal(err)
				}
				o := k.verifyOptions()
				o.BodyKey = nil
				rep, err := Verify(context.Background(), OpenExport(os.DirFS(dir)), o)
				if err == nil && rep.OK() {
					t.Errorf("byte %d of %s flipped, and the export still verifies", i, f)
				}
			})
		}
	}
	want := []string{"bodies", "checkpoint", "checkpoints", "tile/0", "tile/1", "tile/entries"}
	if diff := cmp.Diff(want, slices.Sorted(maps(kinds))); diff != "" {
		t.Errorf("kinds of file flipped (-want +got):\n%s", diff)
	}
}

func maps(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestExportLeavesOutBodiesThatDoNotOpen(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	fill(t, l, 20, 100)
	b := st.bodies[5]
	b.Sealed = st.bodies[6].Sealed // sealed for another event: does not open
	st.bodies[5] = b
	dir := t.TempDir()
	res, err := Export(context.Background(), st, dir, ExportOptions{PublicKey: k.vkey, WithBodies: true, BodyKey: k.bodyKey})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bodies != 19 || res.Unopened != 1 {
		t.Errorf("Export = %+v; want 19 bodies and 1 unopened", res)
	}
	o := k.verifyOptions()
	o.BodyKey = nil
	wantVerifyFailure(t, OpenExport(os.DirFS(dir)), o, 5, -1, "no erasure was recorded")
}

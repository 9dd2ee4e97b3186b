package aims_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/aims/bundletest"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// tinyBundle exports a bundle of an empty management system and a three-entry
// ledger: small enough to change every byte of it in turn.
func tinyBundle(t *testing.T) (*env, []byte) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	for range 3 {
		if _, err := e.log.Record(ctx, vigil.Event{Type: vigil.EventDecision, Decision: vigil.Allow, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	e.checkpoint(t)
	var buf bytes.Buffer
	if _, err := e.svc.ExportBundle(ctx, &buf, aims.BundleOptions{
		From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Origin: e.opts.Origin, Signer: e.opts.Signer, PublicKey: e.pubkey,
		Sources: aims.Sources{Ledger: e.db.Ledger()},
	}); err != nil {
		t.Fatal(err)
	}
	return e, buf.Bytes()
}

// TestBundleEveryByteIsCovered changes every byte of a bundle in turn (every bit of
// the gzip header and of the last 64 bytes, where the deflate stream and the gzip
// trailer end), and requires each change to fail verification. Under the race
// detector, which makes inflating ten times slower, it changes every 23rd byte.
func TestBundleEveryByteIsCovered(t *testing.T) {
	e, archive := tinyBundle(t)
	if rep := verify(t, archive, e.pubkey); !rep.OK() {
		t.Fatalf("untouched bundle fails: %v", rep.Failures)
	}
	stride := 1
	if raceEnabled || testing.Short() {
		stride = 23
	}
	type change struct {
		at   int
		mask byte
	}
	var changes []change
	for i := range archive {
		switch {
		case i < 10 || i >= len(archive)-64:
			for bit := range 8 {
				changes = append(changes, change{i, 1 << bit})
			}
		case i%stride == 0:
			changes = append(changes, change{i, 0xff})
		}
	}
	t.Logf("%d changes to a %d-byte bundle", len(changes), len(archive))
	var (
		mu       sync.Mutex
		verified []change
		wg       sync.WaitGroup
		next     = make(chan change)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for c := range next {
				b := bytes.Clone(archive)
				b[c.at] ^= c.mask
				rep, err := aims.VerifyBundle(bytes.NewReader(b), aims.VerifyOptions{PublicKey: e.pubkey})
				if err != nil || rep.OK() {
					mu.Lock()
					verified = append(verified, c)
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range changes {
		next <- c
	}
	close(next)
	wg.Wait()
	for _, c := range verified {
		t.Errorf("byte %d ^ %#02x: the changed bundle verifies (or errors)", c.at, c.mask)
	}
}

// TestBundleFramingIsNamed changes bytes that carry no member content — gzip and tar
// headers, padding, what follows the archive, the order and the compression — and
// requires verification to fail naming each.
func TestBundleFramingIsNamed(t *testing.T) {
	e, archive := tinyBundle(t)
	set := func(i int, v byte) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			b := bytes.Clone(archive)
			b[i] = v
			return b
		}
	}
	// tarEdit changes the tar stream at the offset at returns, then recompresses it.
	tarEdit := func(at func(tarStream []byte) int) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			ts := bundletest.Tar(t, archive)
			ts[at(ts)] = 'x'
			return bundletest.Gzip(t, ts)
		}
	}
	names, files := bundletest.Unpack(t, archive)
	cases := []struct {
		name  string
		bytes func(t *testing.T) []byte
		want  string
	}{
		{"gzip flags", set(3, 0x01), "the gzip header differs from what vigil evidence export writes (byte 3: flags)"},
		{"gzip mtime", set(4, 0x5a), "(byte 4: modification time)"},
		{"gzip mtime high byte", set(7, 0x66), "(byte 7: modification time)"},
		{"gzip extra flags", set(8, 0x02), "(byte 8: extra flags)"},
		{"gzip os", set(9, 0x03), "(byte 9: operating system)"},
		{"tar mtime", func(t *testing.T) []byte {
			return bundletest.Repack(t, archive, func(h *tar.Header) {
				if h.Name == aims.ReportFile {
					h.ModTime = h.ModTime.Add(-time.Hour)
				}
			})
		}, "tar header of report.html: mtime differs"},
		{"tar mtime of the manifest", func(t *testing.T) []byte {
			return bundletest.Repack(t, archive, func(h *tar.Header) {
				if h.Name == aims.ManifestFile {
					h.ModTime = h.ModTime.Add(time.Second)
				}
			})
		}, "tar header of MANIFEST: mtime differs"},
		{"tar mode", func(t *testing.T) []byte {
			return bundletest.Repack(t, archive, func(h *tar.Header) {
				if h.Name == "soa.json" {
					h.Mode = 0o600
				}
			})
		}, "tar header of soa.json: mode differs"},
		{"tar owner", func(t *testing.T) []byte {
			return bundletest.Repack(t, archive, func(h *tar.Header) {
				if h.Name == "soa.csv" {
					h.Uid, h.Uname = 1000, "mallory"
				}
			})
		}, "tar header of soa.csv: uid, uname differ"},
		{"tar pax record", func(t *testing.T) []byte {
			return bundletest.Repack(t, archive, func(h *tar.Header) {
				if h.Name == aims.EntriesFile {
					h.Format, h.PAXRecords = tar.FormatPAX, map[string]string{"comment": "hi"}
				}
			})
		}, "tar header of ledger/entries.jsonl: 1536 bytes where vigil evidence export writes 512"},
		{"tar padding", tarEdit(func(ts []byte) int {
			// The last byte of the block holding the end of the first member that
			// does not fill its last block.
			off := 0
			for _, n := range names {
				end := off + 512 + (len(files[n])+511)/512*512
				if len(files[n])%512 != 0 {
					return end - 1
				}
				off = end
			}
			t.Fatal("no member has padding")
			return 0
		}), "the padding after "},
		{"tar unused header bytes", func(t *testing.T) []byte {
			ts := bundletest.Tar(t, archive)
			ts[505] = 'x'
			fixChecksum(ts[:512])
			return bundletest.Gzip(t, ts)
		}, "tar header of MANIFEST: unused bytes differs"},
		{"tar header checksum", tarEdit(func([]byte) int { return 150 }), "the tar header at the start is corrupt"},
		{"end-of-archive marker", tarEdit(func(ts []byte) int { return len(ts) - 1 }), "the tar header after report.html is corrupt"},
		{"zero block after the end", func(t *testing.T) []byte {
			return bundletest.Gzip(t, append(bundletest.Tar(t, archive), make([]byte, 512)...))
		}, "512 bytes follow the end of the tar archive inside the compressed stream"},
		{"trailing bytes", func(t *testing.T) []byte { return append(bytes.Clone(archive), 0) }, "1 byte after the end of the archive"},
		{"second gzip member", func(t *testing.T) []byte {
			return append(bytes.Clone(archive), bundletest.Gzip(t, []byte("more"))...)
		}, "bytes after the end of the archive (a second gzip member"},
		{"reordered", func(t *testing.T) []byte {
			n := append([]string{}, names...)
			n[1], n[2] = n[2], n[1]
			return bundletest.Repack(t, bundletest.Pack(t, n, files), func(h *tar.Header) {
				*h = *exportHeader(t, archive, h.Name, h.Size)
			})
		}, `member "inventory.json" is out of place: vigil evidence export writes "soa.json" there (position 2)`},
		{"recompressed", func(t *testing.T) []byte {
			var buf bytes.Buffer
			gz, _ := gzip.NewWriterLevel(&buf, 5) // the same header, another encoding
			gz.Write(bundletest.Tar(t, archive))
			gz.Close()
			return buf.Bytes()
		}, "the compressed data differs from what vigil evidence export writes for these files"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.bytes(t)
			if bytes.Equal(b, archive) {
				t.Fatal("the change changed nothing")
			}
			rep := verify(t, b, e.pubkey)
			if rep.OK() {
				t.Fatal("the changed bundle verifies")
			}
			if all := strings.Join(rep.Failures, "\n"); !strings.Contains(all, c.want) {
				t.Errorf("failures lack %q:\n%s", c.want, all)
			}
		})
	}
}

// fixChecksum sets a ustar header block's checksum to match its other bytes.
func fixChecksum(block []byte) {
	copy(block[148:156], "        ")
	sum := 0
	for _, b := range block {
		sum += int(b)
	}
	copy(block[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// exportHeader is the archive's first header with name and size: the header export
// writes for that member.
func exportHeader(t *testing.T, archive []byte, name string, size int64) *tar.Header {
	h, err := tar.NewReader(bytes.NewReader(bundletest.Tar(t, archive))).Next()
	if err != nil {
		t.Fatal(err)
	}
	h.Name, h.Size = name, size
	return h
}

var updateGoldenBundle = flag.Bool("update-golden-bundle", false, "rewrite testdata/golden-bundle.* (never to make a test pass: old bundles must still verify)")

// TestGoldenBundle verifies a bundle written by an earlier version of Vigil and
// committed with its key. Evidence written once must verify forever: a change to
// the layout, the framing or the manifest that breaks it fails here, and so does a
// Go release whose compress/flate encodes differently (verify requires the
// exporter's deflate encoding, see docs/adr/0009-aims.md) — then the encoding check
// must learn to accept the older encoder's output; never regenerate this file to
// make the test pass.
func TestGoldenBundle(t *testing.T) {
	archivePath, keyPath := filepath.Join("testdata", "golden-bundle.tar.gz"), filepath.Join("testdata", "golden-bundle.pub")
	if *updateGoldenBundle {
		e, archive := tinyBundle(t)
		if err := os.WriteFile(archivePath, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, []byte(e.pubkey+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	archive, err := os.ReadFile(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, archive, strings.TrimSpace(string(key)))
	if !rep.OK() || rep.Entries != 3 || !strings.Contains(strings.Join(checkDetails(rep), "\n"), "compression included") {
		t.Errorf("golden bundle: ok %v, %d entries, failures %q", rep.OK(), rep.Entries, rep.Failures)
	}
}

func TestBundleRepackIsIdentity(t *testing.T) {
	e, archive := tinyBundle(t)
	if got := bundletest.Repack(t, archive, nil); !bytes.Equal(got, archive) {
		t.Fatalf("repacking changes the archive: %d bytes, was %d", len(got), len(archive))
	}
	if rep := verify(t, archive, e.pubkey); !strings.Contains(strings.Join(checkDetails(rep), "\n"), "byte for byte the archive vigil evidence export writes") {
		t.Errorf("checks = %v", checkDetails(rep))
	}
}

func checkDetails(rep *aims.BundleReport) []string {
	var out []string
	for _, c := range rep.Checks {
		out = append(out, c.Name+": "+c.Detail)
	}
	return out
}

// FuzzVerifyBundle feeds changed copies of the golden bundle to the verifier: it
// must not panic, and nothing but the golden bytes themselves may verify under the
// golden key.
func FuzzVerifyBundle(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "golden-bundle.tar.gz"))
	if err != nil {
		f.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join("testdata", "golden-bundle.pub"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(append(bytes.Clone(golden), 0))
	f.Add(golden[:len(golden)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := aims.VerifyBundle(bytes.NewReader(b), aims.VerifyOptions{PublicKey: strings.TrimSpace(string(key))})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() != bytes.Equal(b, golden) {
			t.Fatalf("a %d-byte input verifies %v; it is golden: %v", len(b), rep.OK(), bytes.Equal(b, golden))
		}
	})
}

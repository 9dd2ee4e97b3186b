package aims

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// The bundle's framing is canonical: for a given list of members and creation time,
// export writes exactly one byte sequence, and verify requires it. The manifest's
// hashes cover the members' contents; the framing checks below cover every other
// byte — the gzip header and trailer, each tar header block, the padding after each
// member, the end-of-archive marker, the order of the members, and what follows —
// so a change anywhere fails and is named. See docs/adr/0009-aims.md.

// gzipHeader is the gzip member header export writes (RFC 1952 §2.3): the magic
// number, deflate, no flags (so no name, comment or extra field), modification time
// zero, extra flags zero (gzip.DefaultCompression), operating system 255 (unknown).
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// gzipHeaderField names the field each byte of gzipHeader belongs to.
var gzipHeaderField = [10]string{"magic number", "magic number", "compression method", "flags",
	"modification time", "modification time", "modification time", "modification time", "extra flags", "operating system"}

// bundleLayout is every member a vigil-evidence/1 bundle may hold, in the order export
// writes them: the manifest first, so a reader meets the signed list before the files.
var bundleLayout = []string{
	ManifestFile, "soa.json", "inventory.json", "policies.json", "risks.json", "impact-assessments.json",
	"competence.json", "documents.json", "communications.json", "applicability.json", "audits.json",
	"reviews.json", "incidents.json", "health-history.json", "verifications.json", "metrics.json",
	"review-inputs.json", "soa.csv", CheckpointsFile, ConsistencyFile, EntriesFile, BodiesFile,
	PublicKeyFile, ReportFile,
}

// bundleHeader is the tar header export writes for a member: only the name, size and
// modification time (the manifest's creation time) vary.
func bundleHeader(name string, size int64, created time.Time) *tar.Header {
	return &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: created.UTC().Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
}

// writeArchive writes members as a .tar.gz in bundleLayout order, every header
// stamped with created. It is the only writer of bundles; readArchive and
// checkFraming accept exactly what it writes.
func writeArchive(w io.Writer, created time.Time, members []member) error {
	sorted := slices.Clone(members)
	for _, m := range sorted {
		if !slices.Contains(bundleLayout, m.name) {
			return fmt.Errorf("%s is not a member of a %s bundle", m.name, BundleFormat)
		}
	}
	slices.SortStableFunc(sorted, func(a, b member) int {
		return slices.Index(bundleLayout, a.name) - slices.Index(bundleLayout, b.name)
	})
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, m := range sorted {
		if err := tw.WriteHeader(bundleHeader(m.name, int64(len(m.data)), created)); err != nil {
			return fmt.Errorf("couldn't write %s: %w", m.name, err)
		}
		if _, err := tw.Write(m.data); err != nil {
			return fmt.Errorf("couldn't write %s: %w", m.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("couldn't finish the archive: %w", err)
	}
	return gz.Close()
}

// archiveMember is a member as read, with the raw bytes the tar reader consumed to
// reach it: the padding after the previous member, then its header block(s).
type archiveMember struct {
	member
	hdr *tar.Header
	raw []byte
}

// rawArchive is a bundle as read.
type rawArchive struct {
	compressed []byte
	members    []archiveMember
	// end is what followed the last member: its padding and the end-of-archive
	// marker.
	end []byte
}

// tape records what a reader returns while rec is set.
type tape struct {
	r   io.Reader
	rec bool
	buf []byte
}

func (t *tape) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if t.rec {
		t.buf = append(t.buf, p[:n]...)
	}
	return n, err
}

// readArchive reads a bundle whole. It records in rep what is wrong with the gzip
// framing (header, a second member, trailing bytes) and returns nil only when the
// archive cannot be read.
func readArchive(r io.Reader, rep *BundleReport) *rawArchive {
	compressed, err := io.ReadAll(r)
	if err != nil {
		rep.check("archive", false, "couldn't read the archive: %v", err)
		return nil
	}
	a := &rawArchive{compressed: compressed}
	framingOK := true
	fail := func(format string, args ...any) {
		rep.check("archive", false, format, args...)
		framingOK = false
	}
	var diffs []string
	for i, want := range gzipHeader {
		if i >= len(compressed) {
			diffs = append(diffs, fmt.Sprintf("bytes %d-9 missing", i))
			break
		}
		if compressed[i] != want {
			diffs = append(diffs, fmt.Sprintf("byte %d: %s", i, gzipHeaderField[i]))
		}
	}
	if len(diffs) > 0 {
		fail("the gzip header differs from what vigil evidence export writes (%s)", strings.Join(diffs, "; "))
	}
	// A bytes.Reader is an io.ByteReader, so neither gzip nor flate reads past the
	// gzip trailer: what is left in br afterwards follows the archive.
	br := bytes.NewReader(compressed)
	gz, err := gzip.NewReader(br)
	if err != nil {
		rep.check("archive", false, "not a gzip archive: %v", err)
		return nil
	}
	gz.Multistream(false)
	t := &tape{r: gz}
	tr := tar.NewReader(t)
	seen := map[string]bool{}
	for {
		t.rec, t.buf = true, nil
		hdr, err := tr.Next()
		t.rec = false
		if errors.Is(err, io.EOF) {
			a.end = t.buf
			break
		}
		if err != nil {
			after := "at the start"
			if n := len(a.members); n > 0 {
				after = "after " + a.members[n-1].name
			}
			rep.check("archive", false, "the tar header %s is corrupt: %v", after, err)
			return nil
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size > MaxBundleMember || path.Clean(hdr.Name) != hdr.Name || strings.HasPrefix(hdr.Name, "/") || strings.HasPrefix(hdr.Name, "..") {
			rep.check("archive", false, "member %q is not a plain file with a clean relative name", hdr.Name)
			return nil
		}
		if seen[hdr.Name] {
			rep.check("archive", false, "member %q appears twice", hdr.Name)
			return nil
		}
		seen[hdr.Name] = true
		b, err := io.ReadAll(io.LimitReader(tr, MaxBundleMember))
		if err != nil {
			rep.check("archive", false, "couldn't read member %q: %v", hdr.Name, err)
			return nil
		}
		a.members = append(a.members, archiveMember{member: member{hdr.Name, b}, hdr: hdr, raw: t.buf})
	}
	// Reading to EOF checks the gzip trailer's CRC-32 and length.
	n, err := io.Copy(io.Discard, gz)
	if err != nil {
		rep.check("archive", false, "the gzip stream is corrupt: %v", err)
		return nil
	}
	if n > 0 {
		fail("%s follow the end of the tar archive inside the compressed stream", plural(int(n), "byte"))
	}
	if br.Len() > 0 {
		fail("%s after the end of the archive (a second gzip member or appended data)", plural(br.Len(), "byte"))
	}
	if framingOK {
		rep.check("archive", true, "%d members in one gzip member with the header export writes, checksum and length correct, nothing after it", len(a.members))
	}
	return a
}

// checkFraming compares every tar header block, the padding after every member and
// the end-of-archive marker with what writeArchive writes for the same members
// stamped with created, and the members' order with bundleLayout.
func checkFraming(a *rawArchive, created time.Time, rep *BundleReport) {
	bad := 0
	fail := func(format string, args ...any) {
		rep.check("archive", false, format, args...)
		bad++
	}
	var want bytes.Buffer
	sink := &switchWriter{w: &want}
	tw := tar.NewWriter(sink)
	prev := ""
	for _, m := range a.members {
		want.Reset()
		sink.on = true
		if err := tw.WriteHeader(bundleHeader(m.name, int64(len(m.data)), created)); err != nil {
			fail("member %q is not one vigil evidence export can write: %v", m.name, err)
			return
		}
		sink.on = false
		describeFraming(m.raw, want.Bytes(), prev, "tar header of "+m.name, fail)
		if _, err := tw.Write(m.data); err != nil {
			fail("member %q: %v", m.name, err)
			return
		}
		prev = m.name
	}
	want.Reset()
	sink.on = true
	if err := tw.Close(); err != nil {
		fail("couldn't re-encode the archive's end: %v", err)
		return
	}
	describeFraming(a.end, want.Bytes(), prev, "end-of-archive marker", fail)

	var got, layout []string
	for _, m := range a.members {
		got = append(got, m.name)
		if !slices.Contains(bundleLayout, m.name) {
			fail("member %q is not a member of a %s bundle", m.name, BundleFormat)
		}
	}
	for _, name := range bundleLayout {
		if slices.Contains(got, name) {
			layout = append(layout, name)
		}
	}
	known := slices.DeleteFunc(slices.Clone(got), func(n string) bool { return !slices.Contains(bundleLayout, n) })
	for i := range known {
		if known[i] != layout[i] {
			fail("member %q is out of place: vigil evidence export writes %q there (position %d)", known[i], layout[i], i+1)
			break
		}
	}
	if bad == 0 {
		rep.check("archive", true, "the %d tar headers, the padding after each member, the end-of-archive marker and the order are exactly what vigil evidence export writes", len(a.members))
	}
}

// ustarField names the field of a ustar header block at each offset.
func ustarField(off int) string {
	fields := []struct {
		end  int
		name string
	}{{100, "name"}, {108, "mode"}, {116, "uid"}, {124, "gid"}, {136, "size"}, {148, "mtime"}, {156, "checksum"},
		{157, "typeflag"}, {257, "linkname"}, {263, "magic"}, {265, "version"}, {297, "uname"}, {329, "gname"},
		{337, "devmajor"}, {345, "devminor"}, {500, "prefix"}, {512, "unused bytes"}}
	for _, f := range fields {
		if off < f.end {
			return f.name
		}
	}
	return "unused bytes"
}

// describeFraming compares raw bytes read (the padding after member prev, then a
// header or the end marker) with what export writes, and reports each difference
// by what it is.
func describeFraming(got, want []byte, prev, what string, fail func(string, ...any)) {
	if bytes.Equal(got, want) {
		return
	}
	pad := len(want) % 512 // headers and the end marker are whole blocks
	if !bytes.Equal(got[:min(pad, len(got))], want[:pad]) {
		fail("the padding after %s differs from what vigil evidence export writes (zeros)", prev)
	}
	if len(got) < pad {
		return
	}
	g, w := got[pad:], want[pad:]
	if len(g) != len(w) {
		fail("%s: %d bytes where vigil evidence export writes %d", what, len(g), len(w))
		return
	}
	var fields []string
	for i := range g {
		if g[i] != w[i] {
			f := ustarField(i % 512)
			if len(w) > 512 {
				f = fmt.Sprintf("block %d %s", i/512+1, f)
			}
			if what == "end-of-archive marker" {
				f = fmt.Sprintf("byte %d", i)
			}
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	if len(fields) > 1 {
		// The checksum follows the other fields: name it only when alone.
		fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasSuffix(f, "checksum") })
	}
	switch len(fields) {
	case 0:
	case 1:
		fail("%s: %s differs from what vigil evidence export writes", what, fields[0])
	default:
		fail("%s: %s differ from what vigil evidence export writes", what, strings.Join(fields, ", "))
	}
}

// checkEncoding compares the compressed bytes with what writeArchive writes for the
// same members: equal only if the deflate encoding is the exporter's too.
func checkEncoding(a *rawArchive, created time.Time, rep *BundleReport) {
	members := make([]member, len(a.members))
	for i, m := range a.members {
		members[i] = m.member
	}
	cw := &compareWriter{want: a.compressed, diff: -1}
	if err := writeArchive(cw, created, members); err != nil {
		rep.check("archive", false, "couldn't re-encode the archive: %v", err)
		return
	}
	if cw.diff < 0 && cw.n < len(a.compressed) {
		cw.diff = cw.n
	}
	if cw.diff >= 0 {
		rep.check("archive", false, "the compressed data differs from what vigil evidence export writes for these files (first at byte %d), "+
			"though it decompresses to the same archive: its deflate encoding was changed, or it was written by a build whose compressor encodes differently", cw.diff)
		return
	}
	rep.check("archive", true, "byte for byte the archive vigil evidence export writes for these files, compression included")
}

// switchWriter passes writes to w while on, and drops them otherwise.
type switchWriter struct {
	w  io.Writer
	on bool
}

func (s *switchWriter) Write(p []byte) (int, error) {
	if s.on {
		return s.w.Write(p)
	}
	return len(p), nil
}

// compareWriter compares what is written with want, recording the first offset
// that differs.
type compareWriter struct {
	want []byte
	n    int
	diff int
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if c.diff < 0 {
		rest := c.want[min(c.n, len(c.want)):]
		for i, b := range p {
			if i >= len(rest) || rest[i] != b {
				c.diff = c.n + i
				break
			}
		}
	}
	c.n += len(p)
	return len(p), nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// manifestCreated reads the creation time from a manifest's text without checking
// its signature, so the tar headers can be compared before (and whether or not)
// the signature verifies. A changed time fails the signature anyway.
func manifestCreated(manifest []byte) (time.Time, bool) {
	_, rest, ok := bytes.Cut(manifest, []byte("\ncreated "))
	if !ok {
		return time.Time{}, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	t, err := time.Parse(time.RFC3339, string(line))
	return t, err == nil
}

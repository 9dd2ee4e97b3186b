package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func runEvidence(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "evidence", "Export the signed evidence bundle an auditor reads (ISO/IEC 42001 records, SoA, health history,\nincidents, and the ledger's checkpoints and entries for a period with their proofs); verify one offline.", []verb{
		{"export", "write the evidence bundle for a period (reads the data directory or database directly)", evidenceExport},
		{"verify", "check a bundle offline and print what it proves", evidenceVerify},
	}, args)
}

// parseDay reads YYYY-MM-DD (the start of that day, or with end the start of the next)
// or an RFC 3339 time.
func parseDay(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-11-01) or time (2026-11-01T09:00:00Z)", s)
	}
	if end {
		d = d.Add(24 * time.Hour)
	}
	return d, nil
}

// refuseWrites is the ledger recorder of offline tools: exporting must never write.
type refuseWrites struct{}

func (refuseWrites) Record(context.Context, vigil.Event) (vigil.Receipt, error) {
	return vigil.Receipt{}, errors.New("the offline evidence export does not write to the ledger")
}

func evidenceExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "evidence export", "[--config FILE] [--data DIR | --database DSN] --from DATE --to DATE --out FILE [--with-bodies]",
		`Write the evidence bundle for a period as one .tar.gz: the Statement of Applicability (JSON and CSV), the
inventory, AI policies with their sign-offs, risk and impact assessments, competence, documents,
communication, audits and reviews (with the review input pack), incidents and actions, health-check and
verification history, the period's metrics, the ledger's checkpoints for the period with consistency
proofs between consecutive ones, the period's entries with inclusion proofs (bodies withheld unless
--with-bodies), the ledger's public key, and an HTML report — under a MANIFEST of SHA-256 hashes signed
with the ledger key. Reads the data directory (or --database) directly; the gateway may be running.`)
	cfgPath := fs.String("config", "", "`FILE` (vigil.yaml) for data_dir, database and the aims settings")
	data := fs.String("data", "", "data `DIR` holding the keys (and the SQLite database); default ./vigil-data")
	dsn := fs.String("database", "", "PostgreSQL `DSN` (default: SQLite in the data directory)")
	from := fs.String("from", "", "first day of the period, YYYY-MM-DD or RFC 3339 (required)")
	to := fs.String("to", "", "last day of the period, inclusive, YYYY-MM-DD or RFC 3339 (required)")
	out := fs.String("out", "", "bundle `FILE` to write, e.g. evidence-2026-q4.tar.gz (required)")
	withBodies := fs.Bool("with-bodies", false, "include the entries' bodies (prompts, arguments: personal data; decrypted with the master key)")
	every := fs.Duration("checkpoint-every", aims.DefaultCheckpointEvery, "keep one checkpoint per this period (plus the first and last)")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if *from == "" || *to == "" || *out == "" {
		fmt.Fprintln(env.Stderr, "vigil evidence export: --from, --to and --out are required")
		return errUsage
	}
	start, err := parseDay(*from, false)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	end, err := parseDay(*to, true)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	cfg := config.Default()
	if *cfgPath != "" {
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	if *dsn != "" {
		cfg.Database, cfg.DatabaseEnv = *dsn, ""
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	keys, err := keyring.Load(keyring.Options{Dir: cfg.DataDir, Getenv: getenv})
	if err != nil {
		return fmt.Errorf("couldn't load the ledger key from %s: %w", cfg.DataDir, err)
	}
	db, err := cfg.DatabaseDSN()
	if err != nil {
		return err
	}
	if db == "" {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "vigil.db")); err != nil {
			return fmt.Errorf("no database in %s: %w", cfg.DataDir, err)
		}
	}
	st, err := openStore(ctx, db, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("couldn't open the database: %w", err)
	}
	defer st.Close()
	d, ok := st.(aimsDriver)
	if !ok {
		return errors.New("the storage driver has no management-system store")
	}
	inv := &inventory.Service{Store: st.Inventory(), Ledger: refuseWrites{}}
	svc := &aims.Service{Store: d.AIMS(), Registry: inv, Ledger: refuseWrites{}, Options: aimsOptions(cfg.AIMS)}
	opts := aims.BundleOptions{
		From: start, To: end, Origin: keys.Origin(), Signer: keys.LedgerSigner(), PublicKey: keys.LedgerPublicKey(),
		Sources:    aims.Sources{Ledger: st.Ledger(), Roles: tokenRoles{st.Auth()}},
		WithBodies: *withBodies, CheckpointEvery: *every,
	}
	if *withBodies {
		open, err := bodyOpener(keys.BodyKey())
		if err != nil {
			return err
		}
		opts.OpenBody = open
	}
	tmp := *out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't create %s: %w", tmp, err)
	}
	sum, err := svc.ExportBundle(ctx, f, opts)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("couldn't export the evidence bundle: %w", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return fmt.Errorf("couldn't write %s: %w", *out, err)
	}
	bodies := "bodies withheld"
	if *withBodies {
		bodies = fmt.Sprintf("%d bodies", sum.Bodies)
	}
	fmt.Fprintf(env.Stdout, "Wrote %s (%d bytes): %d files, %d ledger entries with inclusion proofs, %d checkpoints, %s.\nThe manifest is signed by %s. Check it with: vigil evidence verify --key ledger.pub %s\n",
		*out, sum.Bytes, sum.Files, sum.Entries, sum.Checkpoints, bodies, keys.Origin(), *out)
	return nil
}

// bodyOpener opens sealed ledger bodies: nonce || AES-256-GCM(salt || body) with the
// event id as additional data, the format package ledger documents for Body.Sealed.
// It stands in until the ledger exports an opener of its own.
func bodyOpener(key []byte) (func(eventID string, sealed []byte) ([]byte, []byte, error), error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("couldn't use the body key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("couldn't use the body key: %w", err)
	}
	const saltSize = 32
	return func(eventID string, sealed []byte) ([]byte, []byte, error) {
		ns := aead.NonceSize()
		if len(sealed) < ns+saltSize+aead.Overhead() {
			return nil, nil, errors.New("sealed body is too short")
		}
		plain, err := aead.Open(nil, sealed[:ns], sealed[ns:], []byte(eventID))
		if err != nil {
			return nil, nil, errors.New("sealed body does not decrypt with this deployment's key")
		}
		return plain[:saltSize], plain[saltSize:], nil
	}, nil
}

func evidenceVerify(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "evidence verify", "[--key FILE|KEY] [--json] FILE",
		`Check an evidence bundle offline: the MANIFEST's signature, every file's SHA-256 and size, every
checkpoint's signature, the consistency proof between each pair of consecutive checkpoints, every
entry's inclusion proof, every included body against its entry's digest, and that every other byte
of the archive (gzip and tar headers, padding, compressed encoding, nothing appended) is exactly what
export writes. Prints what passed and what it proves; exits 1 naming every part that failed. Pin the
ledger's public key with --key (the ledger.pub of the deployment, obtained independently); without
it the key inside the bundle is used.`)
	keyFlag := fs.String("key", "", "the ledger's public key, or a `FILE` holding it (ledger.pub)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	path, err := oneArg(fs, env, "bundle file")
	if err != nil {
		return err
	}
	key := strings.TrimSpace(*keyFlag)
	if key != "" && !strings.Contains(key, "+") {
		b, err := os.ReadFile(key)
		if err != nil {
			return fmt.Errorf("couldn't read --key: %w", err)
		}
		key = strings.TrimSpace(string(b))
	} else if key != "" {
		if b, err := os.ReadFile(key); err == nil {
			key = strings.TrimSpace(string(b))
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("couldn't open %s: %w", path, err)
	}
	defer f.Close()
	rep, err := aims.VerifyBundle(f, aims.VerifyOptions{PublicKey: key})
	if err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(env.Stdout, string(b))
	} else {
		for _, c := range rep.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(env.Stdout, "%s %-20s %s\n", mark, c.Name, c.Detail)
		}
		for _, w := range rep.Warnings {
			fmt.Fprintf(env.Stdout, "warning: %s\n", w)
		}
		if rep.OK() {
			fmt.Fprintf(env.Stdout, "\nThe bundle verifies. What this proves:\n")
			for _, p := range rep.Proves() {
				fmt.Fprintf(env.Stdout, "  - %s\n", p)
			}
		}
	}
	if !rep.OK() {
		return &exitError{code: 1, msg: fmt.Sprintf("vigil evidence verify: %s does NOT verify:\n  %s", path, strings.Join(rep.Failures, "\n  "))}
	}
	return nil
}

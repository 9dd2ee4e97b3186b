package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

const verifySummary = `Verify the whole ledger: every leaf, every stored hash, the tree root, every
checkpoint's signature, the consistency of every consecutive pair of checkpoints,
per-session order, and every body against its digest (missing bodies must have a
recorded erasure). Exit 0 with a one-line summary when intact; exit 1 naming the
first failing index or checkpoint and why when not.

The log's origin and public key come from the data directory (ledger.pub, or
ledger.key), or from --public-key for an auditor who holds only the public key
(bodies are then not checked). For --export without either, the export's own
ledger.pub is used, with a warning: a copy cannot vouch for itself. The data
directory's checkpoint mirror (ledger.checkpoint), when present, must be extended
by the database.

The database is opened read-only and never migrated; one written by an older Vigil
is verified on a migrated copy in a temporary directory. A ledger that is being
written to while it is verified is checked up to the size read at the start.`

// sqliteFile is the database in the data directory.
const sqliteFile = "vigil.db"

// ledgerFlags are the flags that choose a ledger and the keys to read it with.
type ledgerFlags struct {
	data, database, export string
	origin, publicKey      string
}

func (f *ledgerFlags) register(fs interface {
	StringVar(p *string, name, value, usage string)
}, withExport bool) {
	fs.StringVar(&f.data, "data", "", "data directory holding the SQLite database and keys (default ./vigil-data)")
	fs.StringVar(&f.database, "database", "", "PostgreSQL DSN of the database (keys still come from --data or --public-key)")
	if withExport {
		fs.StringVar(&f.export, "export", "", "an export directory written by vigil ledger export")
		fs.StringVar(&f.origin, "origin", "", "the log's origin (default: the public key's name)")
		fs.StringVar(&f.publicKey, "public-key", "", "file holding the log's public key (note verifier format); bodies are then not checked")
	}
}

func (f *ledgerFlags) dataDir() string {
	if f.data == "" {
		return "vigil-data"
	}
	return f.data
}

// ledgerKeys are what reading the ledger needs. Signer and BodyKey are nil when only
// the public key is known.
type ledgerKeys struct {
	origin   string
	verifier note.Verifier
	vkey     string
	signer   note.Signer
	bodyKey  []byte
}

// loadKeys reads the keys: the public key from --public-key or the data directory,
// the signing and body keys from the data directory when they are there.
func (f *ledgerFlags) loadKeys(env *Env) (*ledgerKeys, error) {
	k := &ledgerKeys{}
	if f.publicKey != "" {
		b, err := os.ReadFile(f.publicKey)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the public key: %w", err)
		}
		if err := k.setVerifier(string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", f.publicKey, err)
		}
	} else if f.export != "" && f.data == "" {
		b, err := os.ReadFile(filepath.Join(f.export, ledger.ExportPublicKey))
		if err != nil {
			return nil, fmt.Errorf("couldn't read the export's public key (pass --public-key FILE): %w", err)
		}
		fmt.Fprintf(env.Stderr, "vigil: using the public key inside the export; pass --public-key with the key you trust to pin it\n")
		if err := k.setVerifier(string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", ledger.ExportPublicKey, err)
		}
	} else {
		dir := f.dataDir()
		kv, err := keyring.LoadVerification(dir, env.Getenv)
		if err != nil {
			return nil, fmt.Errorf("%v; pass --data DIR or --public-key FILE", err)
		}
		k.signer, k.bodyKey = kv.Signer, kv.BodyKey
		if err := k.setVerifier(kv.PublicKey); err != nil {
			return nil, err
		}
	}
	k.origin = f.origin
	if k.origin == "" {
		k.origin = k.verifier.Name()
	}
	return k, nil
}

func (k *ledgerKeys) setVerifier(vkey string) error {
	vkey = strings.TrimSpace(vkey)
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("not a note verifier key: %w", err)
	}
	k.verifier, k.vkey = v, vkey
	return nil
}

// openedLedger is a ledger store opened for reading, with its closer.
type openedLedger struct {
	store  ledger.Store
	close  func() error
	mirror []byte // the data directory's checkpoint mirror, if any
}

// openLedger opens the database --data or --database names, read-only: it never
// creates, migrates or writes a database (verifying a directory that has none is an
// error).
func (f *ledgerFlags) openLedger(ctx context.Context, warn io.Writer) (*openedLedger, error) {
	o := &openedLedger{}
	if f.database != "" {
		db, err := postgres.OpenReadOnly(ctx, f.database)
		if err != nil {
			return nil, err
		}
		o.store, o.close = db.Ledger(), db.Close
	} else {
		path := filepath.Join(f.dataDir(), sqliteFile)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no ledger database at %s: %w", path, err)
		}
		db, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
		cleanup := func() error { return nil }
		if errors.Is(err, sqlite.ErrOlderSchema) {
			db, cleanup, err = openMigratedCopy(ctx, warn, path)
		}
		if err != nil {
			return nil, err
		}
		o.store, o.close = db.Ledger(), func() error { return errors.Join(db.Close(), cleanup()) }
	}
	if f.database == "" || f.data != "" {
		m, err := ledger.FileMirror{Path: filepath.Join(f.dataDir(), ledger.MirrorFile)}.Latest()
		if err != nil {
			o.close()
			return nil, err
		}
		o.mirror = m
	}
	return o, nil
}

// openMigratedCopy opens a migrated copy of a database an older Vigil wrote, in a
// temporary directory removed when it is closed; the original is not changed.
func openMigratedCopy(ctx context.Context, warn io.Writer, path string) (*sqlite.DB, func() error, error) {
	tmp, err := os.MkdirTemp("", "vigil-verify-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() error { return os.RemoveAll(tmp) }
	cp := filepath.Join(tmp, sqliteFile)
	if err := sqlite.Snapshot(ctx, path, cp); err != nil {
		cleanup()
		return nil, nil, err
	}
	db, err := sqlite.Open(ctx, cp, sqlite.Options{})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	fmt.Fprintf(warn, "note: %s was written by an older Vigil; reading a migrated copy of it (the original is not changed)\n", path)
	return db, cleanup, nil
}

func runVerify(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "verify", "[--data DIR | --database DSN | --export DIR] [--public-key FILE] [--trusted FILE]… [--json]", verifySummary)
	var lf ledgerFlags
	lf.register(fs, true)
	asJSON := fs.Bool("json", false, "write the full report as JSON")
	var trusted [][]byte
	fs.Func("trusted", "a checkpoint `FILE` kept outside the ledger (a witness's, or one you saw before) that it must extend; repeatable", func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		trusted = append(trusted, b)
		return nil
	})
	heartbeat := fs.Duration("heartbeat", ledger.DefaultHeartbeatInterval, "the deployment's heartbeat interval; gaps of 3× it are warned about")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "vigil verify: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if lf.database != "" && lf.export != "" {
		fmt.Fprintln(env.Stderr, "vigil verify: give one of --database or --export (--data may name the keys for either)")
		return errUsage
	}
	keys, err := lf.loadKeys(env)
	if err != nil {
		return err
	}
	opts := ledger.VerifyOptions{Origin: keys.origin, Verifier: keys.verifier, BodyKey: keys.bodyKey, HeartbeatInterval: *heartbeat, Trusted: trusted}
	var src ledger.Source
	if lf.export != "" {
		if _, err := os.Stat(filepath.Join(lf.export, "checkpoint")); err != nil {
			return fmt.Errorf("%s is not a ledger export: %w", lf.export, err)
		}
		src = ledger.OpenExport(os.DirFS(lf.export))
	} else {
		o, err := lf.openLedger(ctx, env.Stderr)
		if err != nil {
			return err
		}
		defer o.close()
		src = o.store
		if o.mirror != nil {
			opts.Trusted = append(opts.Trusted, o.mirror)
		}
	}
	start := time.Now()
	rep, err := ledger.Verify(ctx, src, opts)
	if err != nil {
		return fmt.Errorf("couldn't verify the ledger: %w", err)
	}
	if *asJSON {
		if err := writeReportJSON(env.Stdout, rep); err != nil {
			return err
		}
	} else {
		for _, w := range rep.Warnings {
			fmt.Fprintf(env.Stderr, "warning: %s\n", w)
		}
		if rep.OK() {
			fmt.Fprintf(env.Stdout, "%s (%s)\n", rep.Summary(), time.Since(start).Round(time.Millisecond))
		}
	}
	if !rep.OK() {
		return &exitError{code: 1, msg: "vigil verify: " + rep.Summary()}
	}
	return nil
}

func writeReportJSON(w io.Writer, rep *ledger.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

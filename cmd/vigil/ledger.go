package main

import (
	"context"
	"fmt"
	"os"

	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/ledger"
)

const ledgerSummary = `Work with the tamper-evident ledger.

Commands:
  export DIR       write the ledger as a C2SP tlog-tiles directory (Tessera's layout:
                   checkpoint, tile/…, tile/entries/…) with every checkpoint and the
                   public key, for offline audit (vigil verify --export, Tessera's fsck)
  proof EVENT_ID   print the event's C2SP tlog-proof against the latest checkpoint

Run "vigil ledger <command> --help" for its flags.`

func runLedger(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(env.Stdout, "Usage: vigil ledger <command> [flags]\n\n"+ledgerSummary)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "export":
		return runLedgerExport(ctx, env, args[1:])
	case "proof":
		return runLedgerProof(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "vigil ledger: unknown command %q\n\n%s\n", args[0], ledgerSummary)
	return errUsage
}

func runLedgerExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "ledger export", "[--data DIR | --database DSN] [--with-bodies] DIR", `Write the ledger up to its latest checkpoint into DIR (new or empty) as a C2SP
tlog-tiles directory byte-compatible with Tessera's, with checkpoints/<size> for
every checkpoint and ledger.pub. --with-bodies adds every body, decrypted, with its
salt (bodies/<N>.jsonl) so an auditor can check digests without the body key: the
export then holds personal data.`)
	var lf ledgerFlags
	lf.register(fs, false)
	withBodies := fs.Bool("with-bodies", false, "include the decrypted bodies and their salts")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "vigil ledger export: want exactly one argument, the export directory")
		return errUsage
	}
	keys, err := lf.loadKeys(env)
	if err != nil {
		return err
	}
	if *withBodies && keys.bodyKey == nil {
		return fmt.Errorf("--with-bodies needs the master key (%s in the data directory or %s)", keyring.MasterKeyFile, keyring.MasterKeyEnv)
	}
	o, err := lf.openLedger(ctx, env.Stderr)
	if err != nil {
		return err
	}
	defer o.close()
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	res, err := ledger.Export(ctx, o.store, dir, ledger.ExportOptions{PublicKey: keys.vkey, WithBodies: *withBodies, BodyKey: keys.bodyKey})
	if err != nil {
		return fmt.Errorf("couldn't export the ledger: %w", err)
	}
	fmt.Fprintf(env.Stdout, "exported %d entries (%d bundles, %d tiles, %d checkpoints, %d bodies) to %s\n",
		res.Size, res.Bundles, res.Tiles, res.Checkpoints, res.Bodies, dir)
	if res.Unopened > 0 {
		fmt.Fprintf(env.Stderr, "warning: %d bodies did not decrypt (substituted or corrupted) and were left out; run vigil verify\n", res.Unopened)
	}
	return nil
}

func runLedgerProof(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "ledger proof", "[--data DIR | --database DSN] EVENT_ID", `Print the C2SP tlog-proof (c2sp.org/tlog-proof@v1) of an event against the latest
checkpoint: the entry's index, its inclusion proof and the signed checkpoint.`)
	var lf ledgerFlags
	lf.register(fs, false)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "vigil ledger proof: want exactly one argument, the event id")
		return errUsage
	}
	keys, err := lf.loadKeys(env)
	if err != nil {
		return err
	}
	if keys.signer == nil || keys.bodyKey == nil {
		return fmt.Errorf("vigil ledger proof needs the data directory's keys (%s and %s)", keyring.LedgerKeyFile, keyring.MasterKeyFile)
	}
	o, err := lf.openLedger(ctx, env.Stderr)
	if err != nil {
		return err
	}
	defer o.close()
	l, err := ledger.Open(ctx, o.store, ledger.Options{Origin: keys.origin, Signer: keys.signer, Verifier: keys.verifier, BodyKey: keys.bodyKey})
	if err != nil {
		return err
	}
	defer l.Close()
	in, err := l.Prove(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(in.TLogProof())
	return err
}

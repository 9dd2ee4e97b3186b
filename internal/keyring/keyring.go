// Package keyring holds the deployment's secret keys. On first start it generates them
// into the data directory (files readable only by the owner); replicas that share a
// PostgreSQL database must share them too, through the same files or the environment
// (VIGIL_MASTER_KEY, VIGIL_LEDGER_KEY).
//
// Two keys are kept: the ledger's Ed25519 checkpoint signing key (its public half is
// published, so it is separate) and a 32-byte master key from which every other
// secret is derived with HKDF-SHA256, one label per purpose, so no two features ever
// share key material.
package keyring

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// File names in the data directory.
const (
	MasterKeyFile = "master.key"
	LedgerKeyFile = "ledger.key"
	LedgerPubFile = "ledger.pub"
)

// Environment variables that override the files (for replicas and secret managers).
const (
	MasterKeyEnv = "VIGIL_MASTER_KEY"
	LedgerKeyEnv = "VIGIL_LEDGER_KEY"
)

// Purposes of derived keys. Changing a label changes the key: never do that to a
// deployment with data.
const (
	PurposeLedgerBody = "vigil/ledger/body/v1"
	PurposePIIVault   = "vigil/pii/vault/v1"
	PurposePIIHash    = "vigil/pii/hash/v1"
	PurposeSession    = "vigil/console/session/v1"
	PurposeWebhook    = "vigil/oversight/webhook/v1"
)

// Keyring is the loaded keys. It is immutable after Load.
type Keyring struct {
	master   []byte
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

// Options for Load.
type Options struct {
	// Dir is the data directory.
	Dir string
	// Origin is the ledger origin to use when generating a new signing key. When a key
	// exists, its name is the origin and a non-empty Origin must equal it.
	Origin string
	// Create allows generating missing keys (vigil serve); verification tools pass
	// false so they never invent keys.
	Create bool
	// Getenv reads the environment; nil means no environment.
	Getenv func(string) string
}

// DefaultOrigin returns a fresh origin for a new deployment's ledger.
func DefaultOrigin() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	host = strings.ToLower(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, host))
	if host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("vigil.%s/ledger/%x", host, b)
}

// Load reads the keys, generating missing ones when opts.Create is set.
func Load(opts Options) (*Keyring, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if opts.Create {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("couldn't create data directory: %w", err)
		}
	}
	k := &Keyring{}
	var err error
	if v := getenv(MasterKeyEnv); v != "" {
		if k.master, err = decodeMaster(v); err != nil {
			return nil, fmt.Errorf("%s: %w", MasterKeyEnv, err)
		}
	} else if k.master, err = loadOrCreate(filepath.Join(opts.Dir, MasterKeyFile), opts.Create, newMaster, decodeMaster); err != nil {
		return nil, err
	}

	var skey string
	if v := getenv(LedgerKeyEnv); v != "" {
		skey = strings.TrimSpace(v)
	} else {
		path := filepath.Join(opts.Dir, LedgerKeyFile)
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && opts.Create:
			origin := opts.Origin
			if origin == "" {
				origin = DefaultOrigin()
			}
			var vkey string
			skey, vkey, err = note.GenerateKey(rand.Reader, origin)
			if err != nil {
				return nil, fmt.Errorf("couldn't generate ledger key: %w", err)
			}
			if err := writeFile(path, []byte(skey+"\n"), 0o600); err != nil {
				return nil, err
			}
			if err := writeFile(filepath.Join(opts.Dir, LedgerPubFile), []byte(vkey+"\n"), 0o644); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, fmt.Errorf("couldn't read ledger key: %w", err)
		default:
			skey = strings.TrimSpace(string(b))
		}
	}
	if k.signer, err = note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("ledger signing key is malformed: %w", err)
	}
	if opts.Origin != "" && k.signer.Name() != opts.Origin {
		return nil, fmt.Errorf("the ledger signing key is for origin %q but the configuration says %q: the origin of an existing ledger cannot change", k.signer.Name(), opts.Origin)
	}
	if k.vkey, err = verifierKey(skey); err != nil {
		return nil, err
	}
	if k.verifier, err = note.NewVerifier(k.vkey); err != nil {
		return nil, fmt.Errorf("ledger public key is malformed: %w", err)
	}
	return k, nil
}

// verifierKey derives the public verifier key from a note signer key.
func verifierKey(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("ledger signing key is not a note signer key (PRIVATE+KEY+…)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return "", errors.New("ledger signing key is not an Ed25519 note key")
	}
	return ed25519VerifierKey(parts[2], raw[1:])
}

// Origin is the ledger's origin (the signing key's name).
func (k *Keyring) Origin() string { return k.signer.Name() }

// LedgerSigner signs checkpoints.
func (k *Keyring) LedgerSigner() note.Signer { return k.signer }

// LedgerVerifier verifies checkpoints.
func (k *Keyring) LedgerVerifier() note.Verifier { return k.verifier }

// LedgerPublicKey is the verifier key in note format, for auditors.
func (k *Keyring) LedgerPublicKey() string { return k.vkey }

// Derive returns a 32-byte key for purpose.
func (k *Keyring) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.master, nil, purpose, 32)
	if err != nil {
		panic("hkdf: " + err.Error()) // unreachable: 32 bytes is within HKDF's limit
	}
	return out
}

// BodyKey is the key that seals ledger bodies.
func (k *Keyring) BodyKey() []byte { return k.Derive(PurposeLedgerBody) }

func newMaster() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

func decodeMaster(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, errors.New("master key must be 32 bytes in standard base64")
	}
	return b, nil
}

func loadOrCreate(path string, create bool, gen func() ([]byte, error), decode func(string) ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, err := gen()
		if err != nil {
			return nil, fmt.Errorf("couldn't generate %s: %w", filepath.Base(path), err)
		}
		if err := writeFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", path, err)
	}
	key, err := decode(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// writeFile writes a new file durably, refusing to overwrite an existing one (two
// processes starting at once must not each generate a different key).
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("couldn't create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	return f.Close()
}

// Verification is what offline verification of a data directory needs: the ledger's
// public key, and the body key when the master key is there.
type Verification struct {
	// PublicKey is the ledger's verifier key in note format.
	PublicKey string
	// Signer is set when the signing key is there (a full data directory).
	Signer note.Signer
	// BodyKey is nil when the master key is not there (an auditor's copy).
	BodyKey []byte
}

// LoadVerification reads what is there of the keys, creating nothing: the public key
// from the signing key (file or VIGIL_LEDGER_KEY) or ledger.pub, the body key from
// the master key (file or VIGIL_MASTER_KEY). It fails only when no public key can be
// found, or a key that is there is malformed.
func LoadVerification(dir string, getenv func(string) string) (*Verification, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	v := &Verification{}
	skey := strings.TrimSpace(getenv(LedgerKeyEnv))
	if skey == "" {
		b, err := os.ReadFile(filepath.Join(dir, LedgerKeyFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("couldn't read the ledger key: %w", err)
		}
		skey = strings.TrimSpace(string(b))
	}
	if skey != "" {
		s, err := note.NewSigner(skey)
		if err != nil {
			return nil, fmt.Errorf("ledger signing key is malformed: %w", err)
		}
		if v.PublicKey, err = verifierKey(skey); err != nil {
			return nil, err
		}
		v.Signer = s
	} else {
		b, err := os.ReadFile(filepath.Join(dir, LedgerPubFile))
		if err != nil {
			return nil, fmt.Errorf("no ledger key in %s (%s or %s): %w", dir, LedgerKeyFile, LedgerPubFile, err)
		}
		v.PublicKey = strings.TrimSpace(string(b))
	}
	var master []byte
	var err error
	if s := getenv(MasterKeyEnv); s != "" {
		if master, err = decodeMaster(s); err != nil {
			return nil, fmt.Errorf("%s: %w", MasterKeyEnv, err)
		}
	} else if b, rerr := os.ReadFile(filepath.Join(dir, MasterKeyFile)); rerr == nil {
		if master, err = decodeMaster(string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", MasterKeyFile, err)
		}
	}
	if master != nil {
		v.BodyKey = (&Keyring{master: master}).Derive(PurposeLedgerBody)
	}
	return v, nil
}

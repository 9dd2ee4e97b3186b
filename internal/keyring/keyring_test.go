package keyring_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/keyring"
	"golang.org/x/mod/sumdb/note"
)

func TestGenerateThenReload(t *testing.T) {
	dir := t.TempDir()
	k1, err := keyring.Load(keyring.Options{Dir: dir, Origin: "example.test/ledger", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keyring.Load(keyring.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if k1.Origin() != "example.test/ledger" || k2.Origin() != k1.Origin() {
		t.Errorf("origins %q, %q", k1.Origin(), k2.Origin())
	}
	if !bytes.Equal(k1.BodyKey(), k2.BodyKey()) {
		t.Error("body key changed across reloads")
	}
	if bytes.Equal(k1.Derive(keyring.PurposePIIVault), k1.Derive(keyring.PurposePIIHash)) {
		t.Error("two purposes derived the same key")
	}
	// A checkpoint signed by the reloaded key verifies with the published public key.
	pub, err := os.ReadFile(filepath.Join(dir, keyring.LedgerPubFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(pub)) != k1.LedgerPublicKey() {
		t.Errorf("ledger.pub = %q, want %q", pub, k1.LedgerPublicKey())
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, k2.LedgerSigner())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Errorf("signature by reloaded key doesn't verify with ledger.pub: %v", err)
	}
	for _, f := range []string{keyring.MasterKeyFile, keyring.LedgerKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s mode %v: secret readable by others", f, fi.Mode())
		}
	}
}

func TestRefusesOriginChange(t *testing.T) {
	dir := t.TempDir()
	if _, err := keyring.Load(keyring.Options{Dir: dir, Origin: "a.test/ledger", Create: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Load(keyring.Options{Dir: dir, Origin: "b.test/ledger", Create: true}); err == nil {
		t.Fatal("Load accepted a different origin for an existing key")
	}
}

func TestNoCreateMeansNoKeys(t *testing.T) {
	if _, err := keyring.Load(keyring.Options{Dir: t.TempDir()}); err == nil {
		t.Fatal("Load without Create invented keys in an empty directory")
	}
}

func TestEnvironmentOverridesFiles(t *testing.T) {
	master := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	dir := t.TempDir()
	k1, err := keyring.Load(keyring.Options{Dir: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	skey, err := os.ReadFile(filepath.Join(dir, keyring.LedgerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{keyring.MasterKeyEnv: master, keyring.LedgerKeyEnv: string(skey)}
	k2, err := keyring.Load(keyring.Options{Dir: t.TempDir(), Getenv: func(k string) string { return env[k] }, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if k2.Origin() != k1.Origin() {
		t.Errorf("origin from env = %q, want %q", k2.Origin(), k1.Origin())
	}
	if bytes.Equal(k2.BodyKey(), k1.BodyKey()) {
		t.Error("VIGIL_MASTER_KEY was ignored")
	}
	env[keyring.MasterKeyEnv] = "short"
	if _, err := keyring.Load(keyring.Options{Dir: t.TempDir(), Getenv: func(k string) string { return env[k] }, Create: true}); err == nil {
		t.Error("a malformed VIGIL_MASTER_KEY was accepted")
	}
}

func TestLoadVerificationReadsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	k, err := keyring.Load(keyring.Options{Dir: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := keyring.LoadVerification(dir, nil)
	if err != nil || v.Signer == nil || v.PublicKey != k.LedgerPublicKey() || !bytes.Equal(v.BodyKey, k.BodyKey()) {
		t.Fatalf("full dir: %+v, %v", v, err)
	}
	// An auditor's copy: public key and master key only.
	os.Remove(filepath.Join(dir, keyring.LedgerKeyFile))
	v, err = keyring.LoadVerification(dir, nil)
	if err != nil || v.Signer != nil || v.PublicKey != k.LedgerPublicKey() || !bytes.Equal(v.BodyKey, k.BodyKey()) {
		t.Fatalf("copy without signing key: %+v, %v", v, err)
	}
	// Public key only: no body key, no error.
	os.Remove(filepath.Join(dir, keyring.MasterKeyFile))
	if v, err = keyring.LoadVerification(dir, nil); err != nil || v.BodyKey != nil {
		t.Fatalf("public key only: %+v, %v", v, err)
	}
	os.Remove(filepath.Join(dir, keyring.LedgerPubFile))
	if _, err := keyring.LoadVerification(dir, nil); err == nil {
		t.Fatal("no keys at all verified nothing and said nothing")
	}
}

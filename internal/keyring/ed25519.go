package keyring

import (
	"crypto/ed25519"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// ed25519VerifierKey returns the note verifier key for the Ed25519 seed.
func ed25519VerifierKey(name string, seed []byte) (string, error) {
	if len(seed) != ed25519.SeedSize {
		return "", fmt.Errorf("ledger signing key seed is %d bytes", len(seed))
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(name, pub)
}

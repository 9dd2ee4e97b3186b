// Package archtest holds the tests that keep the architecture in DESIGN.md true: the
// dependency rules between packages and a doc comment on every package. It has no
// code of its own.
package archtest

package config

import "time"

// LedgerConfig tunes the tamper-evident ledger.
type LedgerConfig struct {
	// Origin names this ledger in its signed checkpoints, e.g.
	// "vigil.example.com/ledger/prod". Used only when the signing key is first
	// generated; afterwards it must equal the key's name (the origin of an existing
	// ledger cannot change). Default: "vigil.<hostname>/ledger/<random>".
	Origin string `yaml:"origin"`
	// CheckpointInterval is how often a signed checkpoint is published while the
	// ledger grows. Default 1s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// HeartbeatInterval is how long the ledger may be idle before a heartbeat event
	// is appended (so every period is covered by a checkpoint). Default 5m.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// MaxBatch caps the events committed in one transaction. Default 512.
	MaxBatch int `yaml:"max_batch"`
	// PublicTiles serves the C2SP tlog-tiles read API (/ledger/checkpoint and
	// /ledger/tile/…) to anyone, as a public transparency log does. Default false:
	// reading needs an admin, auditor or viewer token, because the leaves show event
	// types, actors and timings an organisation may not want public.
	PublicTiles bool `yaml:"public_tiles"`
}

func (c *LedgerConfig) applyDefaults() {
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 5 * time.Minute
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 512
	}
}

func (c *LedgerConfig) validate(errs *FieldErrors) {
	if c.CheckpointInterval < 100*time.Millisecond {
		errs.add("ledger.checkpoint_interval", "must be at least 100ms")
	}
	if c.HeartbeatInterval < c.CheckpointInterval {
		errs.add("ledger.heartbeat_interval", "must be at least the checkpoint interval")
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		errs.add("ledger.max_batch", "must be between 1 and 10000")
	}
}

-- The tamper-evident ledger (package ledger). entries, ledger_hashes and
-- ledger_checkpoints are append-only; triggers refuse updates and deletes as defence in
-- depth (the cryptography is the real control).
CREATE TABLE ledger_entries (
	idx      INTEGER PRIMARY KEY,
	event_id TEXT NOT NULL UNIQUE,
	data     BLOB NOT NULL
) STRICT;

CREATE TABLE ledger_hashes (
	id INTEGER PRIMARY KEY,
	h  BLOB NOT NULL CHECK (length(h) = 32)
) STRICT;

CREATE TABLE ledger_tree (
	id   INTEGER PRIMARY KEY CHECK (id = 0),
	size INTEGER NOT NULL,
	root BLOB NOT NULL CHECK (length(root) = 32)
) STRICT;
-- SHA-256 of the empty string: the RFC 6962 root of the empty tree.
INSERT INTO ledger_tree (id, size, root) VALUES (0, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');

CREATE TABLE ledger_bodies (
	idx      INTEGER PRIMARY KEY REFERENCES ledger_entries (idx),
	event_id TEXT NOT NULL,
	sealed   BLOB NOT NULL
) STRICT;

CREATE TABLE ledger_checkpoints (
	size       INTEGER PRIMARY KEY,
	note       BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE ledger_head (
	id   INTEGER PRIMARY KEY CHECK (id = 0),
	size INTEGER NOT NULL,
	note BLOB NOT NULL
) STRICT;

CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_hashes_no_update BEFORE UPDATE ON ledger_hashes BEGIN SELECT RAISE(ABORT, 'ledger hashes are append-only'); END;
CREATE TRIGGER ledger_hashes_no_delete BEFORE DELETE ON ledger_hashes BEGIN SELECT RAISE(ABORT, 'ledger hashes are append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;

-- The tamper-evident ledger (package ledger). Indices come from the locked ledger_tree
-- row, never from a sequence. Triggers refuse updates and deletes of the append-only
-- tables as defence in depth (the cryptography is the real control).
CREATE TABLE ledger_entries (
	idx      bigint PRIMARY KEY,
	event_id text NOT NULL UNIQUE,
	data     bytea NOT NULL
);

CREATE TABLE ledger_hashes (
	id bigint PRIMARY KEY,
	h  bytea NOT NULL CHECK (length(h) = 32)
);

CREATE TABLE ledger_tree (
	id   integer PRIMARY KEY CHECK (id = 0),
	size bigint NOT NULL,
	root bytea NOT NULL CHECK (length(root) = 32)
);
-- SHA-256 of the empty string: the RFC 6962 root of the empty tree.
INSERT INTO ledger_tree (id, size, root) VALUES (0, 0, '\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');

CREATE TABLE ledger_bodies (
	idx      bigint PRIMARY KEY REFERENCES ledger_entries (idx),
	event_id text NOT NULL,
	sealed   bytea NOT NULL
);

CREATE TABLE ledger_checkpoints (
	size       bigint PRIMARY KEY,
	note       bytea NOT NULL,
	created_at bigint NOT NULL
);

CREATE TABLE ledger_head (
	id   integer PRIMARY KEY CHECK (id = 0),
	size bigint NOT NULL,
	note bytea NOT NULL
);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_hashes_append_only BEFORE UPDATE OR DELETE ON ledger_hashes FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- The PII vault: tokenized values, encrypted by the pii package before they get here
-- (AES-256-GCM bound to agent, session and token id), so this table holds only
-- ciphertext. Rows live until expires_at (UTC microseconds); Purge deletes them.
CREATE TABLE pii_vault (
	agent_id   TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	token_id   TEXT    NOT NULL,
	ciphertext BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (agent_id, session_id, token_id)
) STRICT;
CREATE INDEX pii_vault_expires ON pii_vault (expires_at);

-- The PII vault: tokenized values, encrypted by the pii package before they get here
-- (AES-256-GCM bound to agent, session and token id), so this table holds only
-- ciphertext. Rows live until expires_at; Purge deletes them.
CREATE TABLE pii_vault (
	agent_id   text        NOT NULL,
	session_id text        NOT NULL,
	token_id   text        NOT NULL,
	ciphertext bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (agent_id, session_id, token_id)
);
CREATE INDEX pii_vault_expires ON pii_vault (expires_at);

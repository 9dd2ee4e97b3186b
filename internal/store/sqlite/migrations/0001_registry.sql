-- AI systems, agents, agent API keys and role tokens. Times are UTC microseconds.
CREATE TABLE systems (
	id               TEXT PRIMARY KEY,
	name             TEXT NOT NULL UNIQUE,
	purpose          TEXT NOT NULL DEFAULT '',
	owner            TEXT NOT NULL DEFAULT '',
	lifecycle        TEXT NOT NULL,
	status           TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
	suspended_reason TEXT NOT NULL DEFAULT '',
	suspended_by     TEXT NOT NULL DEFAULT '',
	suspended_at     INTEGER,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE agents (
	id               TEXT PRIMARY KEY,
	name             TEXT NOT NULL UNIQUE,
	system_id        TEXT NOT NULL REFERENCES systems (id),
	owner            TEXT NOT NULL DEFAULT '',
	labels           TEXT NOT NULL DEFAULT '{}',
	status           TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
	suspended_reason TEXT NOT NULL DEFAULT '',
	suspended_by     TEXT NOT NULL DEFAULT '',
	suspended_at     INTEGER,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX agents_system ON agents (system_id);

CREATE TABLE agent_keys (
	id         TEXT PRIMARY KEY,
	agent_id   TEXT NOT NULL REFERENCES agents (id),
	prefix     TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	revoked_at INTEGER
) STRICT;
CREATE INDEX agent_keys_agent ON agent_keys (agent_id);

CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	role       TEXT NOT NULL CHECK (role IN ('admin', 'reviewer', 'auditor', 'viewer')),
	prefix     TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	revoked_at INTEGER
) STRICT;

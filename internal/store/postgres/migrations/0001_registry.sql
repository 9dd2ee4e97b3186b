-- AI systems, agents, agent API keys and role tokens.
CREATE TABLE systems (
	id               text PRIMARY KEY,
	name             text NOT NULL UNIQUE,
	purpose          text NOT NULL DEFAULT '',
	owner            text NOT NULL DEFAULT '',
	lifecycle        text NOT NULL,
	status           text NOT NULL CHECK (status IN ('active', 'suspended')),
	suspended_reason text NOT NULL DEFAULT '',
	suspended_by     text NOT NULL DEFAULT '',
	suspended_at     timestamptz,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL
);

CREATE TABLE agents (
	id               text PRIMARY KEY,
	name             text NOT NULL UNIQUE,
	system_id        text NOT NULL REFERENCES systems (id),
	owner            text NOT NULL DEFAULT '',
	labels           jsonb NOT NULL DEFAULT '{}',
	status           text NOT NULL CHECK (status IN ('active', 'suspended')),
	suspended_reason text NOT NULL DEFAULT '',
	suspended_by     text NOT NULL DEFAULT '',
	suspended_at     timestamptz,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL
);
CREATE INDEX agents_system ON agents (system_id);

CREATE TABLE agent_keys (
	id         text PRIMARY KEY,
	agent_id   text NOT NULL REFERENCES agents (id),
	prefix     text NOT NULL,
	hash       text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL,
	expires_at timestamptz,
	revoked_at timestamptz
);
CREATE INDEX agent_keys_agent ON agent_keys (agent_id);

CREATE TABLE tokens (
	id         text PRIMARY KEY,
	name       text NOT NULL,
	role       text NOT NULL CHECK (role IN ('admin', 'reviewer', 'auditor', 'viewer')),
	prefix     text NOT NULL,
	hash       text NOT NULL UNIQUE,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz,
	revoked_at timestamptz
);

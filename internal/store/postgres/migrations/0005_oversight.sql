-- Human oversight: approval requests and their votes, the global kill switch, console
-- users and their sessions, and webhook delivery attempts.
CREATE TABLE approvals (
	id          text PRIMARY KEY,
	status      text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
	source      text NOT NULL,
	agent_id    text NOT NULL,
	agent_name  text NOT NULL,
	agent_owner text NOT NULL DEFAULT '',
	system_id   text NOT NULL,
	system_name text NOT NULL,
	session_id  text NOT NULL DEFAULT '',
	tool        jsonb,
	model       jsonb,
	args        jsonb,
	rules       jsonb NOT NULL DEFAULT '[]',
	message     text NOT NULL DEFAULT '',
	policy      text NOT NULL DEFAULT '',
	spec        jsonb NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	decided_at  timestamptz,
	decided_by  text NOT NULL DEFAULT '',
	reason      text NOT NULL DEFAULT '',
	edited_args jsonb
);
CREATE INDEX approvals_status_expires ON approvals (status, expires_at);
CREATE INDEX approvals_agent ON approvals (agent_id, status);
CREATE INDEX approvals_system ON approvals (system_id, status);
CREATE INDEX approvals_created ON approvals (created_at);

-- One row per reviewer per request: the primary key makes approvals distinct.
CREATE TABLE approval_votes (
	approval_id text NOT NULL REFERENCES approvals (id),
	reviewer    text NOT NULL,
	verdict     text NOT NULL CHECK (verdict IN ('approve', 'deny')),
	reason      text NOT NULL DEFAULT '',
	args        jsonb,
	at          timestamptz NOT NULL,
	PRIMARY KEY (approval_id, reviewer)
);

-- The global kill switch: at most one row.
CREATE TABLE halt (
	id     integer PRIMARY KEY CHECK (id = 1),
	halted boolean NOT NULL,
	reason text NOT NULL DEFAULT '',
	set_by text NOT NULL DEFAULT '',
	set_at timestamptz NOT NULL
);

CREATE TABLE users (
	id            text PRIMARY KEY,
	name          text NOT NULL UNIQUE,
	roles         jsonb NOT NULL,
	password_hash text NOT NULL,
	disabled      boolean NOT NULL DEFAULT false,
	created_by    text NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

-- Sessions are keyed by the SHA-256 of their secret; the secret is only in the cookie.
CREATE TABLE sessions (
	hash       text PRIMARY KEY,
	user_id    text NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE webhook_deliveries (
	id          text PRIMARY KEY,
	webhook     text NOT NULL,
	event       text NOT NULL,
	approval_id text NOT NULL,
	attempt     integer NOT NULL,
	status      integer NOT NULL,
	error       text NOT NULL DEFAULT '',
	at          timestamptz NOT NULL,
	duration_us bigint NOT NULL
);
CREATE INDEX webhook_deliveries_approval ON webhook_deliveries (approval_id, at);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);

-- Human oversight: approval requests and their votes, the global kill switch, console
-- users and their sessions, and webhook delivery attempts. Times are UTC microseconds;
-- JSON columns hold what the Go types marshal.
CREATE TABLE approvals (
	id          TEXT PRIMARY KEY,
	status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
	source      TEXT NOT NULL,
	agent_id    TEXT NOT NULL,
	agent_name  TEXT NOT NULL,
	agent_owner TEXT NOT NULL DEFAULT '',
	system_id   TEXT NOT NULL,
	system_name TEXT NOT NULL,
	session_id  TEXT NOT NULL DEFAULT '',
	tool        TEXT,
	model       TEXT,
	args        TEXT,
	rules       TEXT NOT NULL DEFAULT '[]',
	message     TEXT NOT NULL DEFAULT '',
	policy      TEXT NOT NULL DEFAULT '',
	spec        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	decided_at  INTEGER,
	decided_by  TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	edited_args TEXT
) STRICT;
CREATE INDEX approvals_status_expires ON approvals (status, expires_at);
CREATE INDEX approvals_agent ON approvals (agent_id, status);
CREATE INDEX approvals_system ON approvals (system_id, status);
CREATE INDEX approvals_created ON approvals (created_at);

-- One row per reviewer per request: the primary key makes approvals distinct.
CREATE TABLE approval_votes (
	approval_id TEXT NOT NULL REFERENCES approvals (id),
	reviewer    TEXT NOT NULL,
	verdict     TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
	reason      TEXT NOT NULL DEFAULT '',
	args        TEXT,
	at          INTEGER NOT NULL,
	PRIMARY KEY (approval_id, reviewer)
) STRICT;

-- The global kill switch: at most one row.
CREATE TABLE halt (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	halted  INTEGER NOT NULL,
	reason  TEXT NOT NULL DEFAULT '',
	set_by  TEXT NOT NULL DEFAULT '',
	set_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	roles         TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_by    TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

-- Sessions are keyed by the SHA-256 of their secret; the secret is only in the cookie.
CREATE TABLE sessions (
	hash       TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE webhook_deliveries (
	id          TEXT PRIMARY KEY,
	webhook     TEXT NOT NULL,
	event       TEXT NOT NULL,
	approval_id TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	status      INTEGER NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	at          INTEGER NOT NULL,
	duration_us INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_approval ON webhook_deliveries (approval_id, at);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);

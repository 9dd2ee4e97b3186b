-- ISO/IEC 42001 management-system records (package aims). Records are JSON documents
-- addressed by kind and id; usage, health and verification history are kept in their
-- own tables because they are appended to or counted, never edited by people.
-- Times are UTC microseconds.
CREATE TABLE aims_records (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	system_id  TEXT NOT NULL DEFAULT '',
	data       BLOB NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (kind, id)
) STRICT;
CREATE INDEX aims_records_system ON aims_records (system_id);

CREATE TABLE aims_usage (
	agent_id   TEXT NOT NULL,
	system_id  TEXT NOT NULL,
	provider   TEXT NOT NULL,
	model      TEXT NOT NULL,
	server     TEXT NOT NULL,
	tool       TEXT NOT NULL,
	source     TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	count      INTEGER NOT NULL,
	PRIMARY KEY (agent_id, system_id, provider, model, server, tool, source)
) STRICT;

CREATE TABLE aims_health (
	seq    INTEGER PRIMARY KEY,
	at     INTEGER NOT NULL,
	check_name TEXT NOT NULL,
	pass   INTEGER NOT NULL,
	detail TEXT NOT NULL
) STRICT;
CREATE INDEX aims_health_at ON aims_health (at);

CREATE TABLE aims_verifications (
	seq        INTEGER PRIMARY KEY,
	at         INTEGER NOT NULL,
	ok         INTEGER NOT NULL,
	size       INTEGER NOT NULL,
	checkpoint INTEGER NOT NULL,
	summary    TEXT NOT NULL,
	method     TEXT NOT NULL
) STRICT;
CREATE INDEX aims_verifications_at ON aims_verifications (at);

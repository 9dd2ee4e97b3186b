-- ISO/IEC 42001 management-system records (package aims). Records are JSON documents
-- addressed by kind and id; usage, health and verification history are kept in their
-- own tables because they are appended to or counted, never edited by people.
CREATE TABLE aims_records (
	kind       text NOT NULL,
	id         text NOT NULL,
	system_id  text NOT NULL DEFAULT '',
	data       bytea NOT NULL,
	updated_at timestamptz NOT NULL,
	updated_by text NOT NULL DEFAULT '',
	PRIMARY KEY (kind, id)
);
CREATE INDEX aims_records_system ON aims_records (system_id);

CREATE TABLE aims_usage (
	agent_id   text NOT NULL,
	system_id  text NOT NULL,
	provider   text NOT NULL,
	model      text NOT NULL,
	server     text NOT NULL,
	tool       text NOT NULL,
	source     text NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	count      bigint NOT NULL,
	PRIMARY KEY (agent_id, system_id, provider, model, server, tool, source)
);

CREATE TABLE aims_health (
	seq        bigserial PRIMARY KEY,
	at         timestamptz NOT NULL,
	check_name text NOT NULL,
	pass       boolean NOT NULL,
	detail     text NOT NULL
);
CREATE INDEX aims_health_at ON aims_health (at);

CREATE TABLE aims_verifications (
	seq        bigserial PRIMARY KEY,
	at         timestamptz NOT NULL,
	ok         boolean NOT NULL,
	size       bigint NOT NULL,
	checkpoint bigint NOT NULL,
	summary    text NOT NULL,
	method     text NOT NULL
);
CREATE INDEX aims_verifications_at ON aims_verifications (at);

-- Usage counters for policy limits and the CEL variable usage (package policy): one row
-- per subject ("agent:<id>", "system:<id>"), metric and fixed window. start_at is the
-- window's start in UTC microseconds; n is a count, or micro-units for cost.
CREATE TABLE policy_usage (
	subject        TEXT    NOT NULL,
	metric         TEXT    NOT NULL,
	window_seconds INTEGER NOT NULL CHECK (window_seconds > 0),
	start_at       INTEGER NOT NULL,
	n              INTEGER NOT NULL,
	PRIMARY KEY (subject, metric, window_seconds, start_at)
) STRICT, WITHOUT ROWID;
CREATE INDEX policy_usage_start ON policy_usage (start_at);

-- Usage counters for policy limits and the CEL variable usage (package policy): one row
-- per subject ("agent:<id>", "system:<id>"), metric and fixed window; n is a count, or
-- micro-units for cost. Every replica adds to the same rows.
CREATE TABLE policy_usage (
	subject        text        NOT NULL,
	metric         text        NOT NULL,
	window_seconds integer     NOT NULL CHECK (window_seconds > 0),
	start_at       timestamptz NOT NULL,
	n              bigint      NOT NULL,
	PRIMARY KEY (subject, metric, window_seconds, start_at)
);
CREATE INDEX policy_usage_start ON policy_usage (start_at);

-- Retention (seeds/002 §3.4) on plain PostgreSQL: there is no job scheduler, so
-- the policies are rows of this table, applied by `qts-data db maintain` (the
-- adapter's maintain(): DELETE of older rows, then VACUUM ANALYZE); run it from
-- cron. The aggregates are views, so they follow their source tables: ohlcv_1m
-- holds what tick_data holds (7 days, where TimescaleDB keeps 30), and
-- hourly_execution_metrics what execution_logs holds (90 days, not 180).
-- There is no compression on plain PostgreSQL (TOAST compresses wide values only).

CREATE TABLE qts_retention_policies (
    relation TEXT PRIMARY KEY,
    time_column TEXT NOT NULL,
    keep INTERVAL NOT NULL
);
INSERT INTO qts_retention_policies (relation, time_column, keep) VALUES
    ('tick_data', 'time', INTERVAL '7 days'),
    ('execution_logs', 'time', INTERVAL '90 days');

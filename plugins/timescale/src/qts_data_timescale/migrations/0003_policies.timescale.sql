-- Compression (seeds/002 §3.2.1) and retention (§3.4).
-- Ticks are compressed per symbol after 7 days, in insertion order within a time.
-- (The seed also drops them after 7 days, so compression matters only for
-- chunks the retention job has not reached yet; both values are the seed's.)

ALTER TABLE tick_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'symbol',
    timescaledb.compress_orderby = 'time, seq'
);
SELECT add_compression_policy('tick_data', INTERVAL '7 days');

SELECT add_retention_policy('tick_data', INTERVAL '7 days');
SELECT add_retention_policy('ohlcv_1m', INTERVAL '30 days');
-- ohlcv_1d, t_ledger and daily_pnl are kept forever (no policy).
SELECT add_retention_policy('execution_logs', INTERVAL '90 days');
SELECT add_retention_policy('hourly_execution_metrics', INTERVAL '180 days');

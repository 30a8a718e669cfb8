-- Continuous aggregates of seeds/002 §3.3, real-time (materialized_only = false):
-- a query sees the materialized buckets plus the raw rows past the watermark,
-- so the newest bar is never missing.
-- open and close break ties of time by insertion order (seq), where the seed's
-- first(price, time) / last(price, time) would pick any of the tied ticks.

CREATE MATERIALIZED VIEW ohlcv_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    time_bucket(INTERVAL '1 minute', time) AS bucket,
    symbol,
    (array_agg(price ORDER BY time, seq))[1] AS open,
    max(price) AS high,
    min(price) AS low,
    (array_agg(price ORDER BY time DESC, seq DESC))[1] AS close,
    sum(volume)::BIGINT AS volume
FROM tick_data
GROUP BY bucket, symbol
WITH NO DATA;

SELECT add_continuous_aggregate_policy('ohlcv_1m',
    start_offset => INTERVAL '1 hour',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');

CREATE INDEX idx_ohlcv_1m_symbol_bucket ON ohlcv_1m (symbol, bucket DESC);

CREATE MATERIALIZED VIEW daily_pnl
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    time_bucket(INTERVAL '1 day', timestamp) AS day,
    symbol,
    sum(CASE WHEN side = 'BUY' THEN -amount WHEN side = 'SELL' THEN amount END) AS realized_pnl,
    count(*) AS trade_count
FROM t_ledger
GROUP BY day, symbol
WITH NO DATA;

SELECT add_continuous_aggregate_policy('daily_pnl',
    start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 day');

CREATE MATERIALIZED VIEW hourly_execution_metrics
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    time_bucket(INTERVAL '1 hour', time) AS hour,
    stage,
    avg(latency_ms) AS avg_latency_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency_ms,
    count(*) FILTER (WHERE success = true) AS success_count,
    count(*) FILTER (WHERE success = false) AS failure_count
FROM execution_logs
GROUP BY hour, stage
WITH NO DATA;

SELECT add_continuous_aggregate_policy('hourly_execution_metrics',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour');

-- The aggregates of seeds/002 §3.3 on plain PostgreSQL: views computed by query
-- (always exact, nothing to refresh), with date_bin aligned to the Unix epoch in
-- place of time_bucket. Same names and columns as the continuous aggregates.

CREATE VIEW ohlcv_1m AS
SELECT
    date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
    symbol,
    (array_agg(price ORDER BY time, seq))[1] AS open,
    max(price) AS high,
    min(price) AS low,
    (array_agg(price ORDER BY time DESC, seq DESC))[1] AS close,
    sum(volume)::BIGINT AS volume
FROM tick_data
GROUP BY 1, symbol;

CREATE VIEW daily_pnl AS
SELECT
    date_bin(INTERVAL '1 day', timestamp, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS day,
    symbol,
    sum(CASE WHEN side = 'BUY' THEN -amount WHEN side = 'SELL' THEN amount END) AS realized_pnl,
    count(*) AS trade_count
FROM t_ledger
GROUP BY 1, symbol;

CREATE VIEW hourly_execution_metrics AS
SELECT
    date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS hour,
    stage,
    avg(latency_ms) AS avg_latency_ms,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency_ms,
    count(*) FILTER (WHERE success = true) AS success_count,
    count(*) FILTER (WHERE success = false) AS failure_count
FROM execution_logs
GROUP BY 1, stage;

-- Time-series tables of seeds/002 §3.2 as hypertables (the by_range form).

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- The ledger (seeds/002 §3.1.2) is a hypertable here: the continuous aggregate
-- daily_pnl (§3.3.2) can only be defined over one. fill_id is an addition to the
-- seed (partial fills; part of the idempotency key).
CREATE TABLE t_ledger (
    id BIGSERIAL NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    symbol VARCHAR(20) COLLATE "C" NOT NULL,
    side VARCHAR(4) NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty DECIMAL(18, 8) NOT NULL CHECK (qty > 0 AND qty <> 'NaN'),
    price DECIMAL(18, 8) NOT NULL CHECK (price >= 0 AND price <> 'NaN'),
    amount DECIMAL(18, 2) NOT NULL CHECK (amount <> 'NaN'),
    fee DECIMAL(18, 2) NOT NULL DEFAULT 0 CHECK (fee >= 0 AND fee <> 'NaN'),
    strategy_tag VARCHAR(50),
    order_id VARCHAR(100),
    fill_id VARCHAR(100),
    broker VARCHAR(20),
    PRIMARY KEY (id, timestamp)
);
SELECT create_hypertable('t_ledger', by_range('timestamp', INTERVAL '30 days'));
CREATE INDEX idx_ledger_timestamp ON t_ledger (timestamp DESC);
CREATE INDEX idx_ledger_symbol ON t_ledger (symbol, timestamp DESC);
CREATE INDEX idx_ledger_strategy ON t_ledger (strategy_tag, timestamp DESC);

-- Ticks. trade_id (the exchange's id) is an addition to the seed. A tick is
-- stored once per dedup key (TickData.dedup_key): (symbol, time, trade_id) when
-- the id is known, every field otherwise. dedup_key is that key past (symbol,
-- time), computed by the server: 't:' || trade_id, or 'h:' || md5 of the other
-- fields (NULLs spelled distinctly). seq is the insertion order: ticks sharing a
-- time keep it, so open and close of a candle are well defined.
CREATE TABLE tick_data (
    time TIMESTAMPTZ NOT NULL,
    symbol VARCHAR(20) COLLATE "C" NOT NULL,
    price DECIMAL(18, 8) NOT NULL CHECK (price >= 0 AND price <> 'NaN'),
    volume BIGINT NOT NULL CHECK (volume >= 0),
    bid DECIMAL(18, 8) CHECK (bid >= 0 AND bid <> 'NaN'),
    ask DECIMAL(18, 8) CHECK (ask >= 0 AND ask <> 'NaN'),
    source VARCHAR(20),
    trade_id VARCHAR(64),
    seq BIGSERIAL NOT NULL,
    dedup_key TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (
        CASE WHEN trade_id IS NOT NULL THEN 't:' || trade_id
        ELSE 'h:' || md5(price::text || '|' || volume::text || '|' || coalesce(bid::text, '')
                         || '|' || coalesce(ask::text, '') || '|' || coalesce('s' || source, 'n'))
        END) STORED
);
SELECT create_hypertable('tick_data', by_range('time', INTERVAL '1 day'),
                         create_default_indexes => false);
-- The seed's (symbol, time DESC) index, made unique with the dedup key.
CREATE UNIQUE INDEX idx_tick_symbol_time ON tick_data (symbol, time DESC, dedup_key);
CREATE INDEX idx_tick_source ON tick_data (source, time DESC);

CREATE TABLE ohlcv_1d (
    time TIMESTAMPTZ NOT NULL,
    symbol VARCHAR(20) COLLATE "C" NOT NULL,
    open DECIMAL(18, 8) NOT NULL CHECK (open >= 0 AND open <> 'NaN'),
    high DECIMAL(18, 8) NOT NULL CHECK (high >= 0 AND high <> 'NaN'),
    low DECIMAL(18, 8) NOT NULL CHECK (low >= 0 AND low <> 'NaN'),
    close DECIMAL(18, 8) NOT NULL CHECK (close >= 0 AND close <> 'NaN'),
    volume BIGINT NOT NULL CHECK (volume >= 0),
    UNIQUE (time, symbol)
);
SELECT create_hypertable('ohlcv_1d', by_range('time', INTERVAL '30 days'));
CREATE INDEX idx_ohlcv_1d_symbol_time ON ohlcv_1d (symbol, time DESC);

-- Stored candles of the intraday intervals (upsert_ohlcv with 1m, 5m, 15m, 1h);
-- an addition to the seed, which stores daily candles only.
CREATE TABLE ohlcv_bars (
    bar_interval VARCHAR(3) NOT NULL CHECK (bar_interval IN ('1m', '5m', '15m', '1h')),
    time TIMESTAMPTZ NOT NULL,
    symbol VARCHAR(20) COLLATE "C" NOT NULL,
    open DECIMAL(18, 8) NOT NULL CHECK (open >= 0 AND open <> 'NaN'),
    high DECIMAL(18, 8) NOT NULL CHECK (high >= 0 AND high <> 'NaN'),
    low DECIMAL(18, 8) NOT NULL CHECK (low >= 0 AND low <> 'NaN'),
    close DECIMAL(18, 8) NOT NULL CHECK (close >= 0 AND close <> 'NaN'),
    volume BIGINT NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (symbol, bar_interval, time)
);
SELECT create_hypertable('ohlcv_bars', by_range('time', INTERVAL '7 days'));

-- id (an addition) keeps the order of logs sharing a time.
CREATE TABLE execution_logs (
    time TIMESTAMPTZ NOT NULL,
    order_id VARCHAR(100) NOT NULL,
    symbol VARCHAR(20) COLLATE "C" NOT NULL,
    stage VARCHAR(50) NOT NULL,
    latency_ms DECIMAL(10, 3) CHECK (latency_ms >= 0 AND latency_ms <> 'NaN'),
    success BOOLEAN NOT NULL,
    error_code VARCHAR(50),
    id BIGSERIAL NOT NULL
);
SELECT create_hypertable('execution_logs', by_range('time', INTERVAL '1 day'));
CREATE INDEX idx_exec_logs_order ON execution_logs (order_id, time DESC);
CREATE INDEX idx_exec_logs_stage ON execution_logs (stage, time DESC);

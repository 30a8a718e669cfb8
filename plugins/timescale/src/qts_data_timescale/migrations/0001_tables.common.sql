-- Regular tables of seeds/002 §3.1, the same on TimescaleDB and plain PostgreSQL.
-- Key columns use the "C" collation: ordering by symbol or key is by code point,
-- the same on every server whatever its locale.

CREATE TABLE positions (
    symbol VARCHAR(20) COLLATE "C" PRIMARY KEY,
    qty DECIMAL(18, 8) NOT NULL CHECK (qty >= 0 AND qty <> 'NaN'),
    avg_price DECIMAL(18, 8) NOT NULL CHECK (avg_price >= 0 AND avg_price <> 'NaN'),
    market VARCHAR(10),
    exposure_value DECIMAL(18, 2) CHECK (exposure_value <> 'NaN'),
    exposure_pct DECIMAL(5, 4) CHECK (exposure_pct <> 'NaN'),
    unrealized_pnl DECIMAL(18, 2) CHECK (unrealized_pnl <> 'NaN'),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_positions_market ON positions (market);
CREATE INDEX idx_positions_updated ON positions (updated_at DESC);

-- The seed's key is strategy_id alone, which allows one parameter per strategy;
-- the contract's key is (strategy_id, param_name).
CREATE TABLE strategies (
    strategy_id VARCHAR(50) COLLATE "C" NOT NULL,
    param_name VARCHAR(100) COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    value_type VARCHAR(20) NOT NULL DEFAULT 'string',
    description TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (strategy_id, param_name)
);
CREATE INDEX idx_strategies_updated ON strategies (updated_at DESC);

CREATE TABLE risk_configs (
    config_key VARCHAR(100) COLLATE "C" PRIMARY KEY,
    value DECIMAL(18, 8) NOT NULL CHECK (value <> 'NaN'),
    description TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- One row per recorded ledger idempotency key (LedgerEntry.idempotency_key:
-- order_id, or order_id#fill_id). A table of its own because on TimescaleDB
-- t_ledger is a hypertable, whose unique indexes must include its time column.
CREATE TABLE t_ledger_keys (
    idempotency_key VARCHAR(201) COLLATE "C" PRIMARY KEY,
    entry_time TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

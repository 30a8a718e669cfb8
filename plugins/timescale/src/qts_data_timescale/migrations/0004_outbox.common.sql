-- The hybrid dual-write's outbox (seeds/002 §4.4), kept here when this database is the
-- primary: a record commits in the same transaction as the write it describes, and a
-- relay delivers it to the secondary (Google Sheets), then deletes it.
CREATE TABLE qts_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op VARCHAR(20) NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    payload TEXT NOT NULL,
    state VARCHAR(10) NOT NULL CHECK (state IN ('intent', 'ready')),
    owner TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    extra TEXT
);
CREATE INDEX idx_qts_outbox_state ON qts_outbox (state, id);

-- Who delivers: processes sharing the database take turns through a lease, so one
-- relay at a time delivers, in order. A holder that dies loses it when it expires.
CREATE TABLE qts_outbox_lease (
    name TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE charges (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL UNIQUE,
    amount_cents BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

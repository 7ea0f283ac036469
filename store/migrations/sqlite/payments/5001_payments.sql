CREATE TABLE charges (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL UNIQUE,
    amount_cents INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);

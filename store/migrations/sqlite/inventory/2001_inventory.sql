CREATE TABLE stock (
    product_id INTEGER PRIMARY KEY,
    initial INTEGER NOT NULL,
    restocked INTEGER NOT NULL DEFAULT 0,
    available INTEGER NOT NULL CHECK (available >= 0),
    reserved INTEGER NOT NULL CHECK (reserved >= 0),
    sold INTEGER NOT NULL CHECK (sold >= 0)
);
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released')),
    expires_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX reservations_by_state ON reservations (state, expires_at_ms);
CREATE TABLE reservation_lines (
    reservation_id TEXT NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, product_id)
);

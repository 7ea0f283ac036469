CREATE TABLE stock (
    product_id BIGINT PRIMARY KEY,
    initial BIGINT NOT NULL,
    restocked BIGINT NOT NULL DEFAULT 0,
    available BIGINT NOT NULL CHECK (available >= 0),
    reserved BIGINT NOT NULL CHECK (reserved >= 0),
    sold BIGINT NOT NULL CHECK (sold >= 0)
);
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released')),
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX reservations_by_state ON reservations (state, expires_at_ms);
CREATE TABLE reservation_lines (
    reservation_id TEXT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, product_id)
);

CREATE TABLE cart_items (
    user_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, product_id)
);

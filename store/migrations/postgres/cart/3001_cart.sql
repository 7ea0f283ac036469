CREATE TABLE cart_items (
    user_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);

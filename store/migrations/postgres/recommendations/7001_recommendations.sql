CREATE TABLE recommendations (
    product_id BIGINT NOT NULL,
    recommended_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    score BIGINT NOT NULL,
    PRIMARY KEY (product_id, recommended_id)
);

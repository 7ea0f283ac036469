CREATE TABLE recommendations (
    product_id INTEGER NOT NULL,
    recommended_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    score INTEGER NOT NULL,
    PRIMARY KEY (product_id, recommended_id)
);

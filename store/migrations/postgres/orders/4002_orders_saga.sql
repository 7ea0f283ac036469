-- Saga state for the microservices build's checkout (micro/orders). The monolith's checkout
-- is one transaction and leaves saga_step NULL; a saga writes every column below before it
-- moves on to its next remote call, so a restarted orders service can finish what it started.
-- saga_step: how far the saga got, i.e. what may be held elsewhere
--   (started | quoted | reserving | charging | charged | done).
ALTER TABLE orders ADD COLUMN saga_step TEXT;
-- Bumped by every saga transition: writers compare-and-set on it, so two drivers (a request
-- and the recovery loop, or two orders replicas) can never both move the same saga.
ALTER TABLE orders ADD COLUMN saga_version BIGINT NOT NULL DEFAULT 0;
-- Set when the saga decided to compensate; kept on the cancelled order for the audit.
ALTER TABLE orders ADD COLUMN failure_code TEXT;
ALTER TABLE orders ADD COLUMN failure_message TEXT;
ALTER TABLE orders ADD COLUMN updated_at_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX orders_by_saga ON orders (status, updated_at_ms);

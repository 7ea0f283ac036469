-- A confirmed order whose stock commit is still owed (micro/orders): the saga confirms the
-- order once the charge is recorded and commits the reservation `order-<id>` when inventory
-- answers, so such an order is `status = 'confirmed'` with `saga_step = 'charged'` until the
-- recovery loop has committed it (then 'done'). The loop looks for them every half second,
-- and they are few among all the confirmed orders, so it reads them through this index
-- rather than every confirmed order.
CREATE INDEX orders_stock_commit_owed ON orders (updated_at_ms)
    WHERE status = 'confirmed' AND saga_step = 'charged';

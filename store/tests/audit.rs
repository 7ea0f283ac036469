//! The audit reads every order there is: after a long lab run that is more orders than one
//! SQL statement may bind (SQLite: 32766 parameters).

use domain::Context;
use store::{Db, DbOptions};

#[tokio::test]
async fn the_orders_audit_reads_more_orders_than_one_statement_can_bind() {
    const ORDERS: i64 = 40_000;
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let options = DbOptions {
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(5),
    };
    let db = Db::connect(&url, &options)
        .await
        .expect("the database opens");
    db.migrate(&[Context::Orders]).await.expect("migrations");
    let mut transaction = db.begin_write().await.expect("a transaction");
    // Rows written straight in: the audit, not the checkout, is under test.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO orders (id, user_id, idempotency_key, fingerprint, status, total_cents,
                             created_at_ms)
         SELECT i, 1, 'key-' || i, 'f', 'confirmed', 100, 0 FROM n",
    )
    .bind(ORDERS)
    .execute(&mut *transaction)
    .await
    .expect("orders inserted");
    sqlx::query(
        "INSERT INTO order_lines (order_id, product_id, sku, name, quantity, unit_price_cents)
         SELECT id, 7, 'SKU-7', 'Lamp', 1, 100 FROM orders",
    )
    .execute(&mut *transaction)
    .await
    .expect("lines inserted");

    let audit = store::orders::audit_in(&mut transaction)
        .await
        .expect("the audit of 40000 orders");
    assert_eq!(audit.len(), ORDERS as usize);
    assert!(
        audit
            .iter()
            .all(|order| order.lines.len() == 1 && order.lines[0].product_id == 7),
        "every order came back with its one line"
    );
    assert_eq!(audit.last().map(|order| order.id), Some(ORDERS));
}

//! `orders` tables: `orders`, `order_lines`. The checkout flows that write them live with
//! each build (one transaction in the monolith, a saga in `micro/orders`); this module is
//! the storage both use.

use std::collections::HashMap;

use domain::admin::OrderAudit;
use domain::orders::{Order, OrderId, OrderLine, OrderStatus};
use domain::users::UserId;
use domain::{DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;

use crate::db::db_error;

pub const TABLES: [&str; 2] = ["orders", "order_lines"];

/// An order with the bookkeeping the checkout needs.
#[derive(Clone, Debug)]
pub struct StoredOrder {
    pub order: Order,
    pub user_id: UserId,
    pub idempotency_key: String,
    pub fingerprint: String,
    pub reservation_id: Option<String>,
    pub charge_id: Option<String>,
}

type OrderRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

const ORDER_COLUMNS: &str = "id, user_id, idempotency_key, fingerprint, status, total_cents, note, reservation_id, charge_id, created_at_ms";

/// Claims an idempotency key for a user by inserting a pending order. `None` when the key is
/// already taken. On PostgreSQL a concurrent claim of the same key waits here until the first
/// transaction ends, which is what serializes replays.
pub async fn claim_key_in(
    connection: &mut AnyConnection,
    user_id: UserId,
    idempotency_key: &str,
    fingerprint: &str,
    note: Option<&str>,
) -> DomainResult<Option<OrderId>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO orders (user_id, idempotency_key, fingerprint, status, total_cents, note, created_at_ms)
         VALUES ($1, $2, $3, 'pending', 0, $4, $5)
         ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(user_id)
    .bind(idempotency_key.to_owned())
    .bind(fingerprint.to_owned())
    .bind(note.map(str::to_owned))
    .bind(now_ms())
    .fetch_optional(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(row.map(|(id,)| id))
}

/// Records the quoted lines and the total, and links the reservation and the charge.
pub async fn record_lines_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    lines: &[OrderLine],
) -> DomainResult<i64> {
    let mut total_cents: i64 = 0;
    for line in lines {
        total_cents = line
            .quantity
            .checked_mul(line.unit_price_cents)
            .and_then(|amount| total_cents.checked_add(amount))
            .ok_or_else(|| DomainError::Invalid("order total overflows".into()))?;
        sqlx::query(
            "INSERT INTO order_lines (order_id, product_id, sku, name, quantity, unit_price_cents)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order_id)
        .bind(line.product_id)
        .bind(line.sku.clone())
        .bind(line.name.clone())
        .bind(line.quantity)
        .bind(line.unit_price_cents)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    }
    sqlx::query("UPDATE orders SET total_cents = $1 WHERE id = $2")
        .bind(total_cents)
        .bind(order_id)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    Ok(total_cents)
}

/// Moves an order to a new status and records the reservation and charge that back it.
pub async fn set_status_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    status: OrderStatus,
    reservation_id: Option<&str>,
    charge_id: Option<&str>,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE orders SET status = $1, reservation_id = COALESCE($2, reservation_id),
         charge_id = COALESCE($3, charge_id) WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(reservation_id.map(str::to_owned))
    .bind(charge_id.map(str::to_owned))
    .bind(order_id)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn find_by_key_in(
    connection: &mut AnyConnection,
    user_id: UserId,
    idempotency_key: &str,
) -> DomainResult<Option<StoredOrder>> {
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND idempotency_key = $2");
    let row: Option<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .bind(idempotency_key.to_owned())
        .fetch_optional(&mut *connection)
        .await
        .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    let mut orders = with_lines(connection, vec![row]).await?;
    Ok(orders.pop())
}

/// One of the user's orders; `NotFound` when it does not exist or is someone else's (the
/// answer is the same, so ids of other users' orders leak nothing).
pub async fn get_in(
    connection: &mut AnyConnection,
    user_id: UserId,
    order_id: OrderId,
) -> DomainResult<Order> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2");
    let row: Option<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(order_id)
        .bind(user_id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Err(DomainError::NotFound(format!("order {order_id} not found")));
    };
    let mut orders = with_lines(connection, vec![row]).await?;
    orders
        .pop()
        .map(|stored| stored.order)
        .ok_or_else(|| DomainError::NotFound(format!("order {order_id} not found")))
}

/// The user's orders, newest first. Pending orders (a saga still running) are included.
pub async fn list_in(connection: &mut AnyConnection, user_id: UserId) -> DomainResult<Vec<Order>> {
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 ORDER BY id DESC LIMIT 100");
    let rows: Vec<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_all(&mut *connection)
        .await
        .map_err(db_error)?;
    Ok(with_lines(connection, rows)
        .await?
        .into_iter()
        .map(|stored| stored.order)
        .collect())
}

pub async fn audit_in(connection: &mut AnyConnection) -> DomainResult<Vec<OrderAudit>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id");
    let rows: Vec<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *connection)
        .await
        .map_err(db_error)?;
    Ok(with_lines(connection, rows)
        .await?
        .into_iter()
        .map(|stored| OrderAudit {
            id: stored.order.id,
            user_id: stored.user_id,
            status: stored.order.status,
            total_cents: stored.order.total_cents,
            idempotency_key: stored.idempotency_key,
            reservation_id: stored.reservation_id,
            charge_id: stored.charge_id,
            lines: stored.order.lines,
        })
        .collect())
}

async fn with_lines(
    connection: &mut AnyConnection,
    rows: Vec<OrderRow>,
) -> DomainResult<Vec<StoredOrder>> {
    let mut lines_by_order: HashMap<i64, Vec<OrderLine>> = HashMap::new();
    if !rows.is_empty() {
        let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
        let sql = format!(
            "SELECT order_id, product_id, sku, name, quantity, unit_price_cents FROM order_lines
             WHERE order_id IN {} ORDER BY order_id, product_id",
            crate::db::placeholders(1, ids.len())
        );
        // Only numbered placeholders are spliced in; the ids are bound.
        let mut query =
            sqlx::query_as::<_, (i64, i64, String, String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            query = query.bind(*id);
        }
        for (order_id, product_id, sku, name, quantity, unit_price_cents) in
            query.fetch_all(&mut *connection).await.map_err(db_error)?
        {
            lines_by_order.entry(order_id).or_default().push(OrderLine {
                product_id,
                sku,
                name,
                quantity,
                unit_price_cents,
            });
        }
    }
    rows.into_iter()
        .map(
            |(
                id,
                user_id,
                idempotency_key,
                fingerprint,
                status,
                total_cents,
                note,
                reservation_id,
                charge_id,
                created_at_ms,
            )| {
                let status = OrderStatus::parse(&status).ok_or_else(|| {
                    DomainError::Internal(format!("unknown order status {status:?}"))
                })?;
                Ok(StoredOrder {
                    order: Order {
                        id,
                        status,
                        total_cents,
                        lines: lines_by_order.remove(&id).unwrap_or_default(),
                        note,
                        created_at_ms,
                    },
                    user_id,
                    idempotency_key,
                    fingerprint,
                    reservation_id,
                    charge_id,
                })
            },
        )
        .collect()
}

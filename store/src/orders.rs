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

/// One of the user's orders as the user sees it: confirmed only. `NotFound` when it does not
/// exist, is someone else's (the answer is the same, so ids of other users' orders leak
/// nothing), or never completed — a saga's pending or cancelled order is bookkeeping (it is
/// in the audit), just as the monolith's rolled-back checkout leaves no order at all.
pub async fn get_in(
    connection: &mut AnyConnection,
    user_id: UserId,
    order_id: OrderId,
) -> DomainResult<Order> {
    let order = get_any_in(connection, user_id, order_id).await?;
    if order.status != OrderStatus::Confirmed {
        return Err(DomainError::NotFound(format!("order {order_id} not found")));
    }
    Ok(order)
}

/// One of the user's orders whatever its status (the checkout flows read their own order).
pub async fn get_any_in(
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

/// The user's confirmed orders, newest first (see [`get_in`] for why only confirmed ones).
pub async fn list_in(connection: &mut AnyConnection, user_id: UserId) -> DomainResult<Vec<Order>> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND status = 'confirmed'
         ORDER BY id DESC LIMIT 100"
    );
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
    // Read after the orders: an order confirmed meanwhile is not in `rows`, and one whose
    // commit was settled meanwhile reads as settled, which its reservation (read later by the
    // auditor) will show too.
    let owing: std::collections::HashSet<OrderId> =
        owed_stock_commits_in(connection, i64::MAX, i64::MAX)
            .await?
            .into_iter()
            .collect();
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
            stock_commit_pending: owing.contains(&stored.order.id),
        })
        .collect())
}

/// Order ids bound in one `IN (...)` list.
const IDS_PER_QUERY: usize = 1000;

async fn with_lines(
    connection: &mut AnyConnection,
    rows: Vec<OrderRow>,
) -> DomainResult<Vec<StoredOrder>> {
    let mut lines_by_order: HashMap<i64, Vec<OrderLine>> = HashMap::new();
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    // In chunks: SQLite takes at most 32766 bound parameters per statement, PostgreSQL 65535,
    // and an audit after a long run reads every order there is.
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT order_id, product_id, sku, name, quantity, unit_price_cents FROM order_lines
             WHERE order_id IN {} ORDER BY order_id, product_id",
            crate::db::placeholders(1, chunk.len())
        );
        // Only numbered placeholders are spliced in; the ids are bound.
        let mut query =
            sqlx::query_as::<_, (i64, i64, String, String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for id in chunk {
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

/// How far a checkout saga got (`orders.saga_step`), i.e. what it may hold in other
/// contexts. Written by `micro/orders` before each remote call; the monolith never sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SagaStep {
    /// The key is claimed; nothing is held anywhere.
    Started,
    /// Lines and total are recorded; nothing is held anywhere.
    Quoted,
    /// A reservation `order-<id>` may exist.
    Reserving,
    /// The reservation is held; a charge `order-<id>` may exist.
    Charging,
    /// The charge exists and is recorded: from here the saga only goes forward. On a
    /// `confirmed` order: the reservation's commit is still owed (inventory did not answer
    /// it), so the reservation is held, not committed, until the recovery loop commits it.
    Charged,
    /// The order is confirmed or cancelled.
    Done,
}

impl SagaStep {
    pub fn as_str(self) -> &'static str {
        match self {
            SagaStep::Started => "started",
            SagaStep::Quoted => "quoted",
            SagaStep::Reserving => "reserving",
            SagaStep::Charging => "charging",
            SagaStep::Charged => "charged",
            SagaStep::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<SagaStep> {
        [
            SagaStep::Started,
            SagaStep::Quoted,
            SagaStep::Reserving,
            SagaStep::Charging,
            SagaStep::Charged,
            SagaStep::Done,
        ]
        .into_iter()
        .find(|step| step.as_str() == text)
    }
}

/// One saga as its driver reads it. `version` is what the driver's next write must match.
#[derive(Clone, Debug)]
pub struct SagaRecord {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub step: SagaStep,
    pub version: i64,
    pub total_cents: i64,
    pub reservation_id: Option<String>,
    pub charge_id: Option<String>,
    /// Set once the saga decided to compensate.
    pub failure: Option<(String, String)>,
    pub updated_at_ms: i64,
}

/// Claims an idempotency key for a saga: like [`claim_key_in`], and the new order starts at
/// [`SagaStep::Started`], version 0, so the recovery loop can find it even if the process
/// dies right after this statement.
pub async fn start_saga_in(
    connection: &mut AnyConnection,
    user_id: UserId,
    idempotency_key: &str,
    fingerprint: &str,
    note: Option<&str>,
) -> DomainResult<Option<OrderId>> {
    let now = now_ms();
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO orders (user_id, idempotency_key, fingerprint, status, total_cents, note,
             created_at_ms, saga_step, saga_version, updated_at_ms)
         VALUES ($1, $2, $3, 'pending', 0, $4, $5, 'started', 0, $5)
         ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(user_id)
    .bind(idempotency_key.to_owned())
    .bind(fingerprint.to_owned())
    .bind(note.map(str::to_owned))
    .bind(now)
    .fetch_optional(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(row.map(|(id,)| id))
}

pub async fn saga_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
) -> DomainResult<Option<SagaRecord>> {
    type SagaRow = (
        i64,
        i64,
        String,
        Option<String>,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let row: Option<SagaRow> = sqlx::query_as(
        "SELECT id, user_id, status, saga_step, saga_version, total_cents, reservation_id,
             charge_id, failure_code, failure_message, updated_at_ms
         FROM orders WHERE id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *connection)
    .await
    .map_err(db_error)?;
    let Some((
        order_id,
        user_id,
        status,
        step,
        version,
        total_cents,
        reservation_id,
        charge_id,
        failure_code,
        failure_message,
        updated_at_ms,
    )) = row
    else {
        return Ok(None);
    };
    let status = OrderStatus::parse(&status)
        .ok_or_else(|| DomainError::Internal(format!("unknown order status {status:?}")))?;
    let step = step
        .as_deref()
        .and_then(SagaStep::parse)
        .ok_or_else(|| DomainError::Internal(format!("order {order_id} has no saga step")))?;
    Ok(Some(SagaRecord {
        order_id,
        user_id,
        status,
        step,
        version,
        total_cents,
        reservation_id,
        charge_id,
        failure: failure_code.map(|code| (code, failure_message.unwrap_or_default())),
        updated_at_ms,
    }))
}

/// Pending sagas whose last write is older than `updated_before_ms`, oldest first: the ones
/// whose driver died or gave up.
pub async fn stale_sagas_in(
    connection: &mut AnyConnection,
    updated_before_ms: i64,
    limit: i64,
) -> DomainResult<Vec<OrderId>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM orders
         WHERE status = 'pending' AND saga_step IS NOT NULL AND updated_at_ms < $1
         ORDER BY updated_at_ms, id LIMIT $2",
    )
    .bind(updated_before_ms)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Moves a running saga from `version` to `step` (recording a reservation or charge id when
/// given). `false` when another driver moved it first, or it is compensating or finished:
/// the caller has lost the saga and must stop.
pub async fn advance_saga_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
    step: SagaStep,
    reservation_id: Option<&str>,
    charge_id: Option<&str>,
) -> DomainResult<bool> {
    let moved = sqlx::query(
        "UPDATE orders SET saga_step = $1, saga_version = saga_version + 1, updated_at_ms = $2,
             reservation_id = COALESCE(CAST($3 AS TEXT), reservation_id),
             charge_id = COALESCE(CAST($4 AS TEXT), charge_id)
         WHERE id = $5 AND saga_version = $6 AND status = 'pending' AND failure_code IS NULL",
    )
    .bind(step.as_str())
    .bind(now_ms())
    .bind(reservation_id.map(str::to_owned))
    .bind(charge_id.map(str::to_owned))
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

/// Takes a saga over at `version` without changing its step (the recovery loop's lease):
/// a pending one, or a confirmed one whose stock commit is owed.
pub async fn lease_saga_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
) -> DomainResult<bool> {
    let moved = sqlx::query(
        "UPDATE orders SET saga_version = saga_version + 1, updated_at_ms = $1
         WHERE id = $2 AND saga_version = $3
             AND (status = 'pending' OR (status = 'confirmed' AND saga_step = 'charged'))",
    )
    .bind(now_ms())
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

/// Turns a running saga into a compensating one: `step` says what may be held, the failure
/// is what the client is told and what the cancelled order keeps.
pub async fn fail_saga_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
    step: SagaStep,
    failure_code: &str,
    failure_message: &str,
) -> DomainResult<bool> {
    let moved = sqlx::query(
        "UPDATE orders SET saga_step = $1, saga_version = saga_version + 1, updated_at_ms = $2,
             failure_code = $3, failure_message = $4
         WHERE id = $5 AND saga_version = $6 AND status = 'pending' AND failure_code IS NULL",
    )
    .bind(step.as_str())
    .bind(now_ms())
    .bind(failure_code.to_owned())
    .bind(failure_message.to_owned())
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

/// Confirms a charged saga: the order becomes `confirmed`, and the saga `done` when its
/// reservation is committed, or stays `charged` while that commit is owed.
pub async fn confirm_saga_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
    stock_committed: bool,
) -> DomainResult<bool> {
    let step = if stock_committed {
        SagaStep::Done
    } else {
        SagaStep::Charged
    };
    let moved = sqlx::query(
        "UPDATE orders SET status = 'confirmed', saga_step = $1,
             saga_version = saga_version + 1, updated_at_ms = $2
         WHERE id = $3 AND saga_version = $4 AND status = 'pending' AND saga_step = 'charged'
             AND failure_code IS NULL",
    )
    .bind(step.as_str())
    .bind(now_ms())
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

/// Confirmed orders whose stock commit is owed and was last tried before
/// `updated_before_ms`, oldest first (through the `orders_stock_commit_owed` index).
pub async fn owed_stock_commits_in(
    connection: &mut AnyConnection,
    updated_before_ms: i64,
    limit: i64,
) -> DomainResult<Vec<OrderId>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM orders
         WHERE status = 'confirmed' AND saga_step = 'charged' AND updated_at_ms < $1
         ORDER BY updated_at_ms, id LIMIT $2",
    )
    .bind(updated_before_ms)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The owed stock commit of a confirmed order happened: the saga is `done`.
pub async fn settle_stock_commit_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
) -> DomainResult<bool> {
    let moved = sqlx::query(
        "UPDATE orders SET saga_step = 'done', saga_version = saga_version + 1,
             updated_at_ms = $1
         WHERE id = $2 AND saga_version = $3 AND status = 'confirmed' AND saga_step = 'charged'",
    )
    .bind(now_ms())
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

/// Cancels a confirmed order whose owed stock commit was refused (the reservation ran out
/// while inventory was unreachable), once its charge is refunded: the apology. The failure
/// is kept for the audit; the key is not freed, so a replay of the request learns what
/// became of its order rather than buying again.
pub async fn apologize_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
    failure_code: &str,
    failure_message: &str,
) -> DomainResult<bool> {
    let moved = sqlx::query(
        "UPDATE orders SET status = 'cancelled', saga_step = 'done',
             saga_version = saga_version + 1, updated_at_ms = $1,
             failure_code = $2, failure_message = $3
         WHERE id = $4 AND saga_version = $5 AND status = 'confirmed' AND saga_step = 'charged'",
    )
    .bind(now_ms())
    .bind(failure_code.to_owned())
    .bind(failure_message.to_owned())
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

/// Cancels a compensated saga and frees its idempotency key.
///
/// The monolith frees a failed checkout's key by rolling back; a saga has already written the
/// order, so it rewrites the key to `<key>#cancelled#<order id>` instead. The cancelled
/// order stays for the audit, and a retry with the original key claims it afresh.
pub async fn cancel_saga_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    version: i64,
) -> DomainResult<bool> {
    let moved = sqlx::query(
        "UPDATE orders SET status = 'cancelled', saga_step = 'done',
             saga_version = saga_version + 1, updated_at_ms = $1,
             idempotency_key = idempotency_key || '#cancelled#' || CAST(id AS TEXT)
         WHERE id = $2 AND saga_version = $3 AND status = 'pending'
             AND failure_code IS NOT NULL",
    )
    .bind(now_ms())
    .bind(order_id)
    .bind(version)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(moved.rows_affected() == 1)
}

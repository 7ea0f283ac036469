//! `inventory` tables: `stock`, `reservations`, `reservation_lines`.
//!
//! Every stock movement keeps `initial + restocked = available + reserved + sold` true in
//! the same statement that moves units, and the guarded `UPDATE ... WHERE available >= $1`
//! is what makes "exactly one wins the last unit" hold on both backends.

use async_trait::async_trait;
use domain::admin::StockAudit;
use domain::catalog::ProductId;
use domain::faults::Faults;
use domain::inventory::{Inventory, Reservation, ReservationState, StockLine};
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;

use crate::Db;
use crate::db::{SEED_BATCH_ROWS, db_error, row_placeholders};

pub const TABLES: [&str; 3] = ["stock", "reservations", "reservation_lines"];

pub struct SqlInventory {
    db: Db,
    faults: Faults,
}

impl SqlInventory {
    pub fn new(db: Db, faults: Faults) -> SqlInventory {
        SqlInventory { db, faults }
    }

    /// One sweep of the reservations whose TTL has passed, logged where it is handled: what
    /// the monolith's maintenance loop and the inventory service's sweeper both run.
    pub async fn sweep_expired(&self) {
        match self.release_expired().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                reservations.released = released,
                "released expired reservations"
            ),
            Err(error) => tracing::warn!(%error, "sweeping expired reservations failed"),
        }
    }

    /// Releases every held reservation whose TTL has passed; returns how many.
    pub async fn release_expired(&self) -> DomainResult<usize> {
        let expired: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM reservations WHERE state = 'held' AND expires_at_ms < $1",
        )
        .bind(now_ms())
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        for (id,) in &expired {
            let mut transaction = self.db.begin_write().await.map_err(db_error)?;
            release_in(&mut transaction, id).await?;
            transaction.commit().await.map_err(db_error)?;
        }
        Ok(expired.len())
    }
}

#[async_trait]
impl Inventory for SqlInventory {
    async fn available(&self, product_id: ProductId) -> DomainResult<i64> {
        self.faults.enter(Context::Inventory).await?;
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT available FROM stock WHERE product_id = $1")
                .bind(product_id)
                .fetch_optional(self.db.reader())
                .await
                .map_err(db_error)?;
        row.map(|(available,)| available).ok_or_else(|| {
            DomainError::NotFound(format!("no stock record for product {product_id}"))
        })
    }

    async fn reserve(
        &self,
        reservation_id: &str,
        lines: &[StockLine],
        ttl_ms: i64,
    ) -> DomainResult<Reservation> {
        self.faults.enter(Context::Inventory).await?;
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let reservation =
            reserve_in(&mut transaction, reservation_id, lines, now_ms() + ttl_ms).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(reservation)
    }

    async fn commit(&self, reservation_id: &str) -> DomainResult<Reservation> {
        self.faults.enter(Context::Inventory).await?;
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let reservation = commit_in(&mut transaction, reservation_id).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(reservation)
    }

    async fn release(&self, reservation_id: &str) -> DomainResult<Reservation> {
        self.faults.enter(Context::Inventory).await?;
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let reservation = release_in(&mut transaction, reservation_id).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(reservation)
    }
}

/// Holds every line or fails with `Conflict`; the caller rolls its transaction back on error.
/// An existing reservation id is returned unchanged (retries are idempotent).
pub async fn reserve_in(
    connection: &mut AnyConnection,
    reservation_id: &str,
    lines: &[StockLine],
    expires_at_ms: i64,
) -> DomainResult<Reservation> {
    if let Some(existing) = find_in(connection, reservation_id).await? {
        return Ok(existing);
    }
    if lines.is_empty() || lines.iter().any(|line| line.quantity <= 0) {
        return Err(DomainError::Invalid(
            "a reservation needs positive quantities".into(),
        ));
    }
    let mut sorted = lines.to_vec();
    // A fixed lock order keeps two concurrent multi-product reservations from deadlocking
    // on PostgreSQL.
    sorted.sort_by_key(|line| line.product_id);
    for line in &sorted {
        let moved = sqlx::query(
            "UPDATE stock SET available = available - $1, reserved = reserved + $1
             WHERE product_id = $2 AND available >= $1",
        )
        .bind(line.quantity)
        .bind(line.product_id)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
        if moved.rows_affected() == 0 {
            return Err(DomainError::Conflict(format!(
                "not enough stock for product {}",
                line.product_id
            )));
        }
    }
    sqlx::query(
        "INSERT INTO reservations (id, state, expires_at_ms, created_at_ms) VALUES ($1, 'held', $2, $3)",
    )
    .bind(reservation_id.to_owned())
    .bind(expires_at_ms)
    .bind(now_ms())
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    for line in &sorted {
        sqlx::query(
            "INSERT INTO reservation_lines (reservation_id, product_id, quantity) VALUES ($1, $2, $3)",
        )
        .bind(reservation_id.to_owned())
        .bind(line.product_id)
        .bind(line.quantity)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    }
    Ok(Reservation {
        id: reservation_id.to_owned(),
        state: ReservationState::Held,
        lines: sorted,
        expires_at_ms,
    })
}

/// Moves held units to sold. Committing twice is a no-op; committing a released
/// reservation is a `Conflict`.
pub async fn commit_in(
    connection: &mut AnyConnection,
    reservation_id: &str,
) -> DomainResult<Reservation> {
    settle_in(connection, reservation_id, ReservationState::Committed).await
}

/// Returns held units to the shelf. Releasing twice is a no-op; releasing a committed
/// reservation is a `Conflict`.
pub async fn release_in(
    connection: &mut AnyConnection,
    reservation_id: &str,
) -> DomainResult<Reservation> {
    settle_in(connection, reservation_id, ReservationState::Released).await
}

async fn settle_in(
    connection: &mut AnyConnection,
    reservation_id: &str,
    target: ReservationState,
) -> DomainResult<Reservation> {
    let mut reservation = find_in(connection, reservation_id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("reservation {reservation_id} not found")))?;
    if reservation.state == target {
        return Ok(reservation);
    }
    if reservation.state != ReservationState::Held {
        return Err(DomainError::Conflict(format!(
            "reservation {reservation_id} is already {}",
            reservation.state.as_str()
        )));
    }
    let movement = match target {
        ReservationState::Committed => {
            "UPDATE stock SET reserved = reserved - $1, sold = sold + $1 WHERE product_id = $2"
        }
        _ => {
            "UPDATE stock SET reserved = reserved - $1, available = available + $1 WHERE product_id = $2"
        }
    };
    for line in &reservation.lines {
        sqlx::query(movement)
            .bind(line.quantity)
            .bind(line.product_id)
            .execute(&mut *connection)
            .await
            .map_err(db_error)?;
    }
    // The state guard makes a concurrent settle of the same reservation a visible conflict
    // instead of a double movement.
    let updated =
        sqlx::query("UPDATE reservations SET state = $1 WHERE id = $2 AND state = 'held'")
            .bind(target.as_str())
            .bind(reservation_id.to_owned())
            .execute(&mut *connection)
            .await
            .map_err(db_error)?;
    if updated.rows_affected() != 1 {
        return Err(DomainError::Conflict(format!(
            "reservation {reservation_id} changed concurrently"
        )));
    }
    reservation.state = target;
    Ok(reservation)
}

async fn find_in(
    connection: &mut AnyConnection,
    reservation_id: &str,
) -> DomainResult<Option<Reservation>> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT id, state, expires_at_ms FROM reservations WHERE id = $1")
            .bind(reservation_id.to_owned())
            .fetch_optional(&mut *connection)
            .await
            .map_err(db_error)?;
    let Some((id, state, expires_at_ms)) = row else {
        return Ok(None);
    };
    let lines: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT product_id, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY product_id",
    )
    .bind(reservation_id.to_owned())
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(Some(Reservation {
        id,
        state: parse_state(&state)?,
        lines: lines
            .into_iter()
            .map(|(product_id, quantity)| StockLine {
                product_id,
                quantity,
            })
            .collect(),
        expires_at_ms,
    }))
}

fn parse_state(state: &str) -> DomainResult<ReservationState> {
    ReservationState::parse(state)
        .ok_or_else(|| DomainError::Internal(format!("unknown reservation state {state:?}")))
}

/// Every product starts with `stock` units available.
pub async fn seed_in(
    connection: &mut AnyConnection,
    product_ids: &[ProductId],
    stock: i64,
) -> Result<(), sqlx::Error> {
    for chunk in product_ids.chunks(SEED_BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO stock (product_id, initial, restocked, available, reserved, sold) VALUES {}",
            row_placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for product_id in chunk {
            query = query
                .bind(*product_id)
                .bind(stock)
                .bind(0_i64)
                .bind(stock)
                .bind(0_i64)
                .bind(0_i64);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Stock per product and every reservation with its lines.
pub async fn audit_in(
    connection: &mut AnyConnection,
) -> DomainResult<(Vec<StockAudit>, Vec<Reservation>)> {
    let stock: Vec<(i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT product_id, initial, restocked, available, reserved, sold FROM stock ORDER BY product_id",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    let stock = stock
        .into_iter()
        .map(
            |(product_id, initial, restocked, available, reserved, sold)| StockAudit {
                product_id,
                initial,
                restocked,
                available,
                reserved,
                sold,
            },
        )
        .collect();
    let headers: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, state, expires_at_ms FROM reservations ORDER BY created_at_ms, id",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    let lines: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT reservation_id, product_id, quantity FROM reservation_lines ORDER BY reservation_id, product_id",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    let mut lines_by_reservation: std::collections::HashMap<String, Vec<StockLine>> =
        std::collections::HashMap::new();
    for (reservation_id, product_id, quantity) in lines {
        lines_by_reservation
            .entry(reservation_id)
            .or_default()
            .push(StockLine {
                product_id,
                quantity,
            });
    }
    let reservations = headers
        .into_iter()
        .map(|(id, state, expires_at_ms)| {
            Ok(Reservation {
                lines: lines_by_reservation.remove(&id).unwrap_or_default(),
                id,
                state: parse_state(&state)?,
                expires_at_ms,
            })
        })
        .collect::<DomainResult<Vec<_>>>()?;
    Ok((stock, reservations))
}

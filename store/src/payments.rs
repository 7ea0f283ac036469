//! `payments` tables: `charges`, `refunds`, behind a simulated provider latency.

use std::time::Duration;

use async_trait::async_trait;
use domain::faults::Faults;
use domain::payments::{Charge, Payments, Refund};
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;

use crate::Db;
use crate::db::db_error;

pub const TABLES: [&str; 2] = ["charges", "refunds"];

pub struct SqlPayments {
    db: Db,
    faults: Faults,
    provider_latency: Duration,
}

impl SqlPayments {
    pub fn new(db: Db, faults: Faults, provider_latency: Duration) -> SqlPayments {
        SqlPayments {
            db,
            faults,
            provider_latency,
        }
    }
}

/// Stands in for the round trip to a card provider. Both builds pay it once per charge.
pub async fn call_provider(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

#[async_trait]
impl Payments for SqlPayments {
    async fn charge(
        &self,
        idempotency_key: &str,
        user_id: UserId,
        amount_cents: i64,
    ) -> DomainResult<Charge> {
        self.faults.enter(Context::Payments).await?;
        call_provider(self.provider_latency).await;
        let mut connection = self.db.writer().acquire().await.map_err(db_error)?;
        charge_in(&mut connection, idempotency_key, user_id, amount_cents).await
    }

    async fn refund(&self, charge_id: &str) -> DomainResult<Refund> {
        self.faults.enter(Context::Payments).await?;
        call_provider(self.provider_latency).await;
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let refund = refund_in(&mut transaction, charge_id).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(refund)
    }
}

/// Records a charge once per idempotency key; a repeat with the same user and amount returns
/// the first charge, a repeat with different ones is `Invalid`.
pub async fn charge_in(
    connection: &mut AnyConnection,
    idempotency_key: &str,
    user_id: UserId,
    amount_cents: i64,
) -> DomainResult<Charge> {
    if amount_cents < 0 {
        return Err(DomainError::Invalid("a charge cannot be negative".into()));
    }
    let charge = Charge {
        id: uuid::Uuid::new_v4().to_string(),
        idempotency_key: idempotency_key.to_owned(),
        user_id,
        amount_cents,
        created_at_ms: now_ms(),
    };
    let inserted = sqlx::query(
        "INSERT INTO charges (id, idempotency_key, user_id, amount_cents, created_at_ms)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(charge.id.clone())
    .bind(charge.idempotency_key.clone())
    .bind(user_id)
    .bind(amount_cents)
    .bind(charge.created_at_ms)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    if inserted.rows_affected() == 1 {
        return Ok(charge);
    }
    let existing = find_charge_in(connection, idempotency_key)
        .await?
        .ok_or_else(|| DomainError::Internal("charge vanished after a key conflict".into()))?;
    if existing.user_id != user_id || existing.amount_cents != amount_cents {
        return Err(DomainError::Invalid(format!(
            "idempotency key {idempotency_key} was used for another charge"
        )));
    }
    Ok(existing)
}

/// Refunds a charge in full, once.
pub async fn refund_in(connection: &mut AnyConnection, charge_id: &str) -> DomainResult<Refund> {
    let existing: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, charge_id, amount_cents, created_at_ms FROM refunds WHERE charge_id = $1",
    )
    .bind(charge_id.to_owned())
    .fetch_optional(&mut *connection)
    .await
    .map_err(db_error)?;
    if let Some((id, charge_id, amount_cents, created_at_ms)) = existing {
        return Ok(Refund {
            id,
            charge_id,
            amount_cents,
            created_at_ms,
        });
    }
    let charge: Option<(i64,)> = sqlx::query_as("SELECT amount_cents FROM charges WHERE id = $1")
        .bind(charge_id.to_owned())
        .fetch_optional(&mut *connection)
        .await
        .map_err(db_error)?;
    let (amount_cents,) =
        charge.ok_or_else(|| DomainError::NotFound(format!("charge {charge_id} not found")))?;
    let refund = Refund {
        id: uuid::Uuid::new_v4().to_string(),
        charge_id: charge_id.to_owned(),
        amount_cents,
        created_at_ms: now_ms(),
    };
    sqlx::query(
        "INSERT INTO refunds (id, charge_id, amount_cents, created_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(refund.id.clone())
    .bind(refund.charge_id.clone())
    .bind(amount_cents)
    .bind(refund.created_at_ms)
    .execute(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(refund)
}

/// The charge made under `idempotency_key`, if any.
pub async fn find_charge_in(
    connection: &mut AnyConnection,
    idempotency_key: &str,
) -> DomainResult<Option<Charge>> {
    let row: Option<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, idempotency_key, user_id, amount_cents, created_at_ms FROM charges WHERE idempotency_key = $1",
    )
    .bind(idempotency_key.to_owned())
    .fetch_optional(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(row.map(
        |(id, idempotency_key, user_id, amount_cents, created_at_ms)| Charge {
            id,
            idempotency_key,
            user_id,
            amount_cents,
            created_at_ms,
        },
    ))
}

pub async fn audit_in(connection: &mut AnyConnection) -> DomainResult<(Vec<Charge>, Vec<Refund>)> {
    let charges: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, idempotency_key, user_id, amount_cents, created_at_ms FROM charges ORDER BY created_at_ms, id",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    let refunds: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, charge_id, amount_cents, created_at_ms FROM refunds ORDER BY created_at_ms, id",
    )
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok((
        charges
            .into_iter()
            .map(
                |(id, idempotency_key, user_id, amount_cents, created_at_ms)| Charge {
                    id,
                    idempotency_key,
                    user_id,
                    amount_cents,
                    created_at_ms,
                },
            )
            .collect(),
        refunds
            .into_iter()
            .map(|(id, charge_id, amount_cents, created_at_ms)| Refund {
                id,
                charge_id,
                amount_cents,
                created_at_ms,
            })
            .collect(),
    ))
}

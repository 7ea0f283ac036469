//! `payments`: charge and refund with idempotency, behind a simulated provider latency.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::DomainResult;
use crate::users::UserId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Charge {
    pub id: String,
    pub idempotency_key: String,
    pub user_id: UserId,
    pub amount_cents: i64,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refund {
    pub id: String,
    pub charge_id: String,
    pub amount_cents: i64,
    pub created_at_ms: i64,
}

#[async_trait]
pub trait Payments: Send + Sync {
    /// Charges once per idempotency key: a repeated key returns the first charge
    /// (`Invalid` if the amount or user differ).
    async fn charge(
        &self,
        idempotency_key: &str,
        user_id: UserId,
        amount_cents: i64,
    ) -> DomainResult<Charge>;
    /// Refunds a charge in full, once (a repeated refund returns the first one).
    async fn refund(&self, charge_id: &str) -> DomainResult<Refund>;
}

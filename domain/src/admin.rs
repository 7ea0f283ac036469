//! The admin API's domain: wipe-and-seed, and the audit snapshot the invariant checker reads.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::ProductId;
use crate::inventory::Reservation;
use crate::orders::{OrderLine, OrderStatus};
use crate::payments::{Charge, Refund};
use crate::users::UserId;
use crate::{DomainError, DomainResult};

/// `POST /admin/reset` body; every field is optional.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ResetRequest {
    pub products: u32,
    /// Initial stock of every product.
    pub stock: i64,
    pub users: u32,
    pub seed: u64,
}

impl Default for ResetRequest {
    fn default() -> ResetRequest {
        ResetRequest {
            products: 100,
            stock: 100,
            users: 10,
            seed: 42,
        }
    }
}

pub const MAX_SEED_PRODUCTS: u32 = 100_000;
pub const MAX_SEED_USERS: u32 = 10_000;
pub const MAX_SEED_STOCK: i64 = 1_000_000_000;

impl ResetRequest {
    pub fn validate(&self) -> DomainResult<()> {
        if !(1..=MAX_SEED_PRODUCTS).contains(&self.products) {
            return Err(DomainError::Invalid(format!(
                "products must be between 1 and {MAX_SEED_PRODUCTS}"
            )));
        }
        if !(0..=MAX_SEED_STOCK).contains(&self.stock) {
            return Err(DomainError::Invalid(format!(
                "stock must be between 0 and {MAX_SEED_STOCK}"
            )));
        }
        if self.users > MAX_SEED_USERS {
            return Err(DomainError::Invalid(format!(
                "users must be at most {MAX_SEED_USERS}"
            )));
        }
        Ok(())
    }
}

/// What a reset produced, including how seeded users log in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetSummary {
    pub products: u32,
    pub stock: i64,
    pub users: u32,
    pub seed: u64,
    /// Seeded user `i` (1-based) is `user<i>@shoplab.test` with this password.
    pub user_password: String,
}

impl ResetSummary {
    pub fn new(request: &ResetRequest, user_password: String) -> ResetSummary {
        ResetSummary {
            products: request.products,
            stock: request.stock,
            users: request.users,
            seed: request.seed,
            user_password,
        }
    }
}

/// Stock of one product as the invariant checker needs it:
/// `initial + restocked = available + reserved + sold` must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockAudit {
    pub product_id: ProductId,
    pub initial: i64,
    pub restocked: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderAudit {
    pub id: i64,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub idempotency_key: String,
    pub reservation_id: Option<String>,
    pub charge_id: Option<String>,
    pub lines: Vec<OrderLine>,
    /// A confirmed order whose reservation the saga still has to commit (inventory did not
    /// answer the commit; `micro/orders` commits it when it does): its units are reserved
    /// until then, sold after. Always `false` for the monolith, whose checkout commits the
    /// stock with the order, and absent from audits taken before it existed.
    #[serde(default)]
    pub stock_commit_pending: bool,
}

/// `GET /admin/audit`: everything the invariant checker compares, per owning context.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Audit {
    pub taken_at_ms: i64,
    pub stock: Vec<StockAudit>,
    pub reservations: Vec<Reservation>,
    pub orders: Vec<OrderAudit>,
    pub charges: Vec<Charge>,
    pub refunds: Vec<Refund>,
}

#[async_trait]
pub trait Admin: Send + Sync {
    /// Wipes every context's data and seeds it again from `request.seed`.
    async fn reset(&self, request: &ResetRequest) -> DomainResult<ResetSummary>;
    async fn audit(&self) -> DomainResult<Audit>;
}

//! Checkout in the monolith: the contexts' steps over the one database, in one of two shapes
//! chosen by `api::Settings::checkout_mode`.
//!
//! This is the monolith's side of the one difference the lab exists to measure.
//!
//! - [`split`] (the default): claim the key, quote and reserve in one write transaction;
//!   charge the payment provider outside any transaction; confirm in a second write
//!   transaction, or compensate (release, refund, cancel, free the key) when the charge
//!   fails. Nothing holds the database while the provider answers. [`recovery`] finishes a
//!   checkout whose process died between the two transactions.
//! - [`single`]: quote, reserve, charge, commit, confirm and empty the cart in one ACID
//!   transaction; nothing to compensate or recover, but the transaction (on SQLite, the one
//!   writer) is held across the provider call, so every other write queues behind it.
//!
//! Both give the same answers to the same requests (the contract suite runs against the
//! default) and keep the invariants the lab checks.

mod recovery;
mod single;
mod split;

use std::time::Duration;

use api::CheckoutMode;
use async_trait::async_trait;
use domain::catalog::ProductId;
use domain::faults::Faults;
use domain::inventory::StockLine;
use domain::orders::{CheckoutOutcome, CheckoutRequest, Order, OrderId, Orders};
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;
use store::{Db, db_error};

/// How often the background loop looks for abandoned checkouts and expired reservations.
pub const MAINTAIN_EVERY: Duration = Duration::from_millis(500);

/// How often a request whose key is held by a running checkout looks at it again. The first
/// request commits the order's row before and after the charge, so this polls a row, not a
/// guessed duration.
const DUPLICATE_POLL: Duration = Duration::from_millis(20);

pub struct MonolithOrders {
    db: Db,
    faults: Faults,
    mode: CheckoutMode,
    payments_latency: Duration,
    /// The split checkout's bound on the provider call.
    payments_timeout: Duration,
    reservation_ttl_ms: i64,
    /// How long a pending split checkout may be silent before it counts as abandoned; also
    /// how long a second request with its key waits for it.
    recover_after: Duration,
}

impl MonolithOrders {
    pub fn new(db: Db, faults: Faults, settings: &api::Settings) -> MonolithOrders {
        MonolithOrders {
            db,
            faults,
            mode: settings.checkout_mode,
            payments_latency: Duration::from_millis(settings.payments_latency_ms),
            payments_timeout: Duration::from_millis(settings.payments_timeout_ms),
            reservation_ttl_ms: settings.reservation_ttl_ms,
            recover_after: recover_after(settings),
        }
    }

    /// Steps shared by both shapes, on the caller's write transaction: read the cart (empty:
    /// `Invalid`), quote it (a product gone: `Conflict`), record lines and total, reserve the
    /// stock as `order-<id>` (short: `Conflict`). Returns the total and the reservation id.
    async fn quote_and_reserve_in(
        &self,
        connection: &mut AnyConnection,
        order_id: OrderId,
        user_id: UserId,
    ) -> DomainResult<(i64, String)> {
        self.faults.enter(Context::Cart).await?;
        let cart = store::cart::lines_in(connection, user_id).await?;
        if cart.is_empty() {
            return Err(DomainError::Invalid("the cart is empty".into()));
        }

        self.faults.enter(Context::Catalog).await?;
        let ids: Vec<ProductId> = cart.iter().map(|line| line.product_id).collect();
        let products = store::catalog::get_many_in(connection, &ids)
            .await
            .map_err(db_error)?;
        let lines = domain::orders::quote(&cart, &products)?;
        let total_cents = store::orders::record_lines_in(connection, order_id, &lines).await?;

        self.faults.enter(Context::Inventory).await?;
        let reservation_id = reservation_id(order_id);
        let stock_lines: Vec<StockLine> = cart
            .iter()
            .map(|line| StockLine {
                product_id: line.product_id,
                quantity: line.quantity,
            })
            .collect();
        let expires_at_ms = now_ms() + self.reservation_ttl_ms;
        store::inventory::reserve_in(connection, &reservation_id, &stock_lines, expires_at_ms)
            .await?;
        Ok((total_cents, reservation_id))
    }
}

#[async_trait]
impl Orders for MonolithOrders {
    async fn checkout(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome> {
        self.faults.enter(Context::Orders).await?;
        match self.mode {
            CheckoutMode::Split => self.checkout_split(user_id, idempotency_key, request).await,
            CheckoutMode::Single => {
                self.checkout_single(user_id, idempotency_key, request)
                    .await
            }
        }
    }

    async fn list(&self, user_id: UserId) -> DomainResult<Vec<Order>> {
        self.faults.enter(Context::Orders).await?;
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        store::orders::list_in(&mut connection, user_id).await
    }

    async fn get(&self, user_id: UserId, order_id: OrderId) -> DomainResult<Order> {
        self.faults.enter(Context::Orders).await?;
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        store::orders::get_in(&mut connection, user_id, order_id).await
    }
}

/// When a pending split checkout counts as abandoned. A live checkout is silent between its
/// two transactions for at most the provider call (bounded by `payments_timeout_ms`) and one
/// wait for the writer (bounded by `db_acquire_timeout_ms`); taking over sooner would fail
/// checkouts that were about to succeed (safely — the version check stops the loser, which
/// refunds its charge — but needlessly), so the threshold is both plus a second's margin, and
/// never under two seconds. The microservices' recovery uses the same rule over its hops.
pub fn recover_after(settings: &api::Settings) -> Duration {
    let silent_ms = settings
        .payments_timeout_ms
        .saturating_add(settings.db_acquire_timeout_ms)
        .saturating_add(1_000);
    Duration::from_millis(silent_ms.max(2_000))
}

/// The reservation of an order: chosen by orders, so a repeated reserve is the same one.
fn reservation_id(order_id: OrderId) -> String {
    format!("order-{order_id}")
}

/// The payments idempotency key of an order: one charge per order, however often asked.
fn charge_key(order_id: OrderId) -> String {
    format!("order-{order_id}")
}

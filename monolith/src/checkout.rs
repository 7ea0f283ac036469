//! Checkout in the monolith: one ACID transaction across the contexts' tables.
//!
//! This is the monolith's side of the one difference the lab exists to measure. Quote,
//! reserve, charge, commit, confirm and empty the cart either all happen or none do; there
//! is nothing to compensate and nothing to recover after a crash. The price: the
//! transaction holds its locks (on SQLite, the one writer) across the simulated payment
//! provider call, so checkouts queue behind each other there.

use std::time::Duration;

use async_trait::async_trait;
use domain::catalog::ProductId;
use domain::faults::Faults;
use domain::inventory::StockLine;
use domain::orders::{CheckoutOutcome, CheckoutRequest, Order, OrderId, OrderStatus, Orders};
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;
use store::{Db, db_error};

pub struct MonolithOrders {
    db: Db,
    faults: Faults,
    payments_latency: Duration,
    reservation_ttl_ms: i64,
}

impl MonolithOrders {
    pub fn new(
        db: Db,
        faults: Faults,
        payments_latency: Duration,
        reservation_ttl_ms: i64,
    ) -> MonolithOrders {
        MonolithOrders {
            db,
            faults,
            payments_latency,
            reservation_ttl_ms,
        }
    }

    /// The steps inside the transaction. Any error rolls everything back.
    async fn checkout_in(
        &self,
        connection: &mut AnyConnection,
        order_id: OrderId,
        user_id: UserId,
        idempotency_key: &str,
    ) -> DomainResult<()> {
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
        let reservation_id = format!("order-{order_id}");
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

        self.faults.enter(Context::Payments).await?;
        store::payments::call_provider(self.payments_latency).await;
        let charge_key = format!("order-{order_id}");
        let charge =
            store::payments::charge_in(connection, &charge_key, user_id, total_cents).await?;

        store::inventory::commit_in(connection, &reservation_id).await?;
        store::orders::set_status_in(
            connection,
            order_id,
            OrderStatus::Confirmed,
            Some(&reservation_id),
            Some(&charge.id),
        )
        .await?;
        store::cart::clear_in(connection, user_id).await?;
        tracing::debug!(
            order.id = order_id,
            order.total_cents = total_cents,
            idempotency_key,
            "order confirmed"
        );
        Ok(())
    }

    /// The answer for a key that was used before: the same order for the same request, an
    /// error for a different one.
    async fn replay(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome> {
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        let stored = store::orders::find_by_key_in(&mut connection, user_id, idempotency_key)
            .await?
            .ok_or_else(|| {
                DomainError::Unavailable("the first request with this key is still running".into())
            })?;
        if stored.fingerprint != request.fingerprint() {
            return Err(DomainError::Invalid(
                "Idempotency-Key was already used with a different request".into(),
            ));
        }
        Ok(CheckoutOutcome {
            order: stored.order,
            replayed: true,
        })
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
        let fingerprint = request.fingerprint();
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let claimed = store::orders::claim_key_in(
            &mut transaction,
            user_id,
            idempotency_key,
            &fingerprint,
            request.note.as_deref(),
        )
        .await?;
        let Some(order_id) = claimed else {
            drop(transaction);
            return self.replay(user_id, idempotency_key, request).await;
        };
        // On error the transaction is dropped, which rolls it back: the claimed key, the
        // reservation and the charge vanish together, so a retry starts clean.
        self.checkout_in(&mut transaction, order_id, user_id, idempotency_key)
            .await?;
        let order = store::orders::get_in(&mut transaction, user_id, order_id).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(CheckoutOutcome {
            order,
            replayed: false,
        })
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

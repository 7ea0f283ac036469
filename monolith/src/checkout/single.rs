//! `checkout_mode = "single"`: the whole checkout, the payment provider call included, in one
//! ACID transaction.
//!
//! Quote, reserve, charge, commit, confirm and empty the cart either all happen or none do;
//! there is nothing to compensate and nothing to recover after a crash. The price: the
//! transaction holds its locks (on SQLite, the one writer) across the simulated provider
//! call, so every other write in the shop — cart updates included — queues behind it.

use domain::orders::{CheckoutOutcome, CheckoutRequest, OrderId, OrderStatus};
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult};
use sqlx::AnyConnection;
use store::db_error;

use super::{MonolithOrders, charge_key};

impl MonolithOrders {
    pub(super) async fn checkout_single(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome> {
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
            return self.replay_single(user_id, idempotency_key, request).await;
        };
        // On error the transaction is dropped, which rolls it back: the claimed key, the
        // reservation and the charge vanish together, so a retry starts clean.
        self.single_in(&mut transaction, order_id, user_id, idempotency_key)
            .await?;
        let order = store::orders::get_in(&mut transaction, user_id, order_id).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(CheckoutOutcome {
            order,
            replayed: false,
        })
    }

    /// The steps inside the transaction. Any error rolls everything back.
    async fn single_in(
        &self,
        connection: &mut AnyConnection,
        order_id: OrderId,
        user_id: UserId,
        idempotency_key: &str,
    ) -> DomainResult<()> {
        let (total_cents, reservation_id) = self
            .quote_and_reserve_in(connection, order_id, user_id)
            .await?;

        self.faults.enter(Context::Payments).await?;
        store::payments::call_provider(self.payments_latency).await;
        let charge =
            store::payments::charge_in(connection, &charge_key(order_id), user_id, total_cents)
                .await?;

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
    /// error for a different one. The first request's transaction has ended by now (the
    /// claim waited for it), so its order is there unless it rolled back.
    async fn replay_single(
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
        if stored.order.status != OrderStatus::Confirmed {
            // Left by a split checkout on the same database (the setting changed between
            // runs): the recovery loop finishes it; until then it is still running.
            return Err(DomainError::Unavailable(
                "the first request with this key is still running".into(),
            ));
        }
        Ok(CheckoutOutcome {
            order: stored.order,
            replayed: true,
        })
    }
}

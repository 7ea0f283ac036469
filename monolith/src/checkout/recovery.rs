//! Recovery: finishing split checkouts whose process died between their two transactions
//! (killed while the provider answered), or whose compensation did not finish.
//!
//! What such a checkout may hold: a reservation `order-<id>` (which also expires on its own:
//! the monolith sweeps expired reservations beside this loop) and perhaps a charge under the
//! key `order-<id>`. It is taken over with a compare-and-set on its version and finished in
//! one write transaction: forward when the charge is recorded and the reservation still held
//! (commit, confirm — the customer paid), otherwise undone (release, refund whatever was
//! charged, cancel and free the key). The loop runs at start and every
//! [`super::MAINTAIN_EVERY`]; a request that finds its key held by an abandoned checkout
//! finishes it on the spot.

use domain::orders::{OrderId, OrderStatus};
use domain::{DomainError, DomainResult, now_ms};
use store::db_error;
use store::orders::SagaStep;

use super::split::{cancel_in, commit_reservation_in};
use super::{MonolithOrders, charge_key};

/// Checkouts looked at per pass; the rest wait for the next pass.
const BATCH: i64 = 50;

impl MonolithOrders {
    /// One pass over the pending split checkouts silent for longer than the recovery
    /// threshold; returns how many reached a terminal state.
    pub async fn recover_abandoned(&self) -> DomainResult<usize> {
        let silent_since_ms = now_ms() - self.recover_after_ms();
        let abandoned = {
            let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
            store::orders::stale_sagas_in(&mut connection, silent_since_ms, BATCH).await?
        };
        let mut finished = 0;
        for order_id in abandoned {
            match self.recover(order_id).await {
                Ok(true) => finished += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(order.id = order_id, %error, "recovering a checkout did not finish; next pass retries")
                }
            }
        }
        Ok(finished)
    }

    /// One pass of [`recover_abandoned`](Self::recover_abandoned) with its outcome logged:
    /// what every maintenance loop over a local checkout runs on each tick (the monolith's,
    /// and that of a topology's group that checks out locally).
    pub async fn recover_abandoned_logged(&self) {
        match self.recover_abandoned().await {
            Ok(0) => {}
            Ok(finished) => {
                tracing::info!(
                    checkouts.finished = finished,
                    "recovered abandoned checkouts"
                )
            }
            Err(error) => tracing::warn!(%error, "looking for abandoned checkouts failed"),
        }
    }

    /// Takes one pending checkout over and finishes it; `false` when it had already ended
    /// or another driver moved it first.
    pub(super) async fn recover(&self, order_id: OrderId) -> DomainResult<bool> {
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let Some(record) = store::orders::saga_in(&mut transaction, order_id).await? else {
            return Ok(false);
        };
        if record.status != OrderStatus::Pending {
            return Ok(false);
        }
        if !store::orders::lease_saga_in(&mut transaction, order_id, record.version).await? {
            return Ok(false);
        }
        let version = record.version + 1;
        tracing::info!(
            order.id = order_id,
            saga.step = record.step.as_str(),
            compensating = record.failure.is_some(),
            "taking over an abandoned checkout"
        );
        let charge =
            store::payments::find_charge_in(&mut transaction, &charge_key(order_id)).await?;
        if let (None, Some(charge)) = (&record.failure, &charge) {
            store::orders::advance_saga_in(
                &mut transaction,
                order_id,
                version,
                SagaStep::Charged,
                None,
                Some(&charge.id),
            )
            .await?;
            match commit_reservation_in(&mut transaction, order_id).await? {
                Ok(()) => {
                    // Past the pivot: the customer paid, so the order is completed, not undone.
                    store::orders::confirm_saga_in(&mut transaction, order_id, version + 1, true)
                        .await?;
                    store::cart::clear_in(&mut transaction, record.user_id).await?;
                    transaction.commit().await.map_err(db_error)?;
                    tracing::info!(order.id = order_id, "abandoned checkout confirmed");
                    return Ok(true);
                }
                Err(gone) => {
                    // Rolled back before undoing: a commit that lost a race with the sweeper
                    // may have moved stock in this transaction before it found out.
                    drop(transaction);
                    return self
                        .cancel_abandoned(order_id, record.version, SagaStep::Charged, &gone)
                        .await;
                }
            }
        }
        let interrupted = DomainError::Unavailable("checkout was interrupted".into());
        // A checkout already compensating has its failure recorded.
        let failure = record
            .failure
            .is_none()
            .then_some((record.step, &interrupted));
        let cancelled = cancel_in(&mut transaction, order_id, version, failure).await?;
        transaction.commit().await.map_err(db_error)?;
        if cancelled {
            tracing::info!(order.id = order_id, "abandoned checkout cancelled");
        }
        Ok(cancelled)
    }

    /// Takes a checkout over at `version` again and cancels it, in a transaction of its own.
    async fn cancel_abandoned(
        &self,
        order_id: OrderId,
        version: i64,
        held: SagaStep,
        error: &DomainError,
    ) -> DomainResult<bool> {
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        if !store::orders::lease_saga_in(&mut transaction, order_id, version).await? {
            return Ok(false);
        }
        let cancelled =
            cancel_in(&mut transaction, order_id, version + 1, Some((held, error))).await?;
        transaction.commit().await.map_err(db_error)?;
        if cancelled {
            tracing::info!(order.id = order_id, %error, "abandoned checkout cancelled");
        }
        Ok(cancelled)
    }
}

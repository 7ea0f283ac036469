//! Recovery: finishing sagas whose driver died (the process was killed mid-checkout) or gave
//! up (a service did not answer while compensating).
//!
//! At start and every [`crate::RECOVER_EVERY`], pending sagas whose last write is older than
//! [`recover_after`] are taken over (a compare-and-set on their version, so one recoverer
//! wins) and driven to a terminal state: forward when the charge is recorded (commit,
//! confirm), otherwise compensate (release, refund whatever may have been charged, cancel).
//! After `orders` is killed and restarted every pending saga ends confirmed or cancelled:
//! nothing stays reserved, and no charge is left without a confirmed order or a refund.
//!
//! Every pass also settles the stock commits owed by confirmed orders (the driver confirmed
//! them when inventory did not answer the commit, see [`crate::saga`]): these are not
//! abandoned but handed over, so they are taken at once rather than after
//! [`recover_after`]. A commit that succeeds marks the saga done; one refused because the
//! reservation ran out (inventory unreachable for longer than its TTL) refunds and cancels
//! the order — the apology.

use std::sync::Arc;
use std::time::Duration;

use domain::orders::OrderStatus;
use domain::{DomainError, DomainResult, now_ms};
use monolith::MonolithOrders;
use store::db_error;
use store::orders::SagaStep;

use crate::saga::{Halt, SagaOrders};

/// The shortest time a saga must have been silent before it counts as abandoned.
pub const RECOVER_AFTER_MIN: Duration = Duration::from_secs(2);

/// Sagas looked at per pass; the rest wait for the next pass.
const BATCH: i64 = 50;

/// When a pending saga counts as abandoned. A live driver writes the saga before each remote
/// call, so it is silent for at most one call, retries and their backoff included; taking
/// over sooner would fail checkouts that were about to succeed (safely — the version check
/// stops the loser — but needlessly), so the threshold is one call's whole budget plus a
/// margin, at least [`RECOVER_AFTER_MIN`]. Derived from the hop settings so tests and the lab
/// can vary it.
pub fn recover_after(settings: &api::Settings) -> Duration {
    let retries = u64::from(settings.hop_retries);
    let attempts_ms = settings.hop_timeout_ms.saturating_mul(1 + retries);
    // Each wait is at most the longest backoff, jitter included.
    let waits_ms = settings.hop_retry_backoff_max_ms.saturating_mul(retries);
    let one_call_ms = attempts_ms.saturating_add(waits_ms);
    RECOVER_AFTER_MIN.max(Duration::from_millis(one_call_ms.saturating_add(1_000)))
}

/// The background loop: one pass at start, then one every [`crate::RECOVER_EVERY`].
pub async fn run(orders: Arc<SagaOrders>, recover_after: Duration) {
    let mut every = tokio::time::interval(crate::RECOVER_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match orders.recover_abandoned(recover_after).await {
            Ok(0) => {}
            Ok(finished) => {
                tracing::info!(sagas.finished = finished, "recovered abandoned checkouts")
            }
            Err(error) => tracing::warn!(%error, "looking for abandoned checkouts failed"),
        }
    }
}

/// The same loop over the local checkout, for a process whose group checks out locally
/// (`domain::topology::Checkout::Local`): finishes the split checkouts a crash left between
/// their two transactions, as the monolith's maintenance loop does.
pub async fn run_local(orders: Arc<MonolithOrders>) {
    let mut every = tokio::time::interval(crate::RECOVER_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        orders.recover_abandoned_logged().await;
    }
}

impl SagaOrders {
    /// One recovery pass: abandoned sagas, then owed stock commits; returns how many sagas
    /// reached a terminal state.
    pub async fn recover_abandoned(&self, recover_after: Duration) -> DomainResult<usize> {
        let finished = self.recover_stale(recover_after).await?;
        Ok(finished + self.settle_owed_commits().await?)
    }

    /// Commits what confirmed orders owe inventory, oldest first. The first commit that
    /// inventory does not answer ends the pass: it is down or failing, and trying the rest
    /// now would only add load to it and hold the loop (each call may wait out its retries).
    async fn settle_owed_commits(&self) -> DomainResult<usize> {
        let owed = {
            let mut connection = self.db().reader().acquire().await.map_err(db_error)?;
            store::orders::owed_stock_commits_in(&mut connection, now_ms() + 1, BATCH).await?
        };
        let mut settled = 0;
        for order_id in owed {
            let record = self.record(order_id).await?;
            if record.status != OrderStatus::Confirmed || record.step != SagaStep::Charged {
                continue;
            }
            match self.settle_owed_commit(&record).await {
                Ok(true) => settled += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(order.id = order_id, %error, "owed stock commit not made; next pass retries");
                    break;
                }
            }
        }
        Ok(settled)
    }

    /// Pending sagas silent for longer than `recover_after`, driven to a terminal state.
    async fn recover_stale(&self, recover_after: Duration) -> DomainResult<usize> {
        let silent_since_ms = now_ms() - i64::try_from(recover_after.as_millis()).unwrap_or(0);
        let abandoned = {
            let mut connection = self.db().reader().acquire().await.map_err(db_error)?;
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

    /// Drives one abandoned saga to a terminal state; `false` when it is not terminal yet
    /// (another driver holds it, or a service is still unreachable).
    pub(crate) async fn recover(&self, order_id: domain::orders::OrderId) -> DomainResult<bool> {
        let record = self.record(order_id).await?;
        if record.status != OrderStatus::Pending {
            return Ok(false);
        }
        let Some(mut lease) = self.lease(&record).await? else {
            return Ok(false);
        };
        tracing::info!(
            order.id = order_id,
            saga.step = record.step.as_str(),
            compensating = record.failure.is_some(),
            "taking over an abandoned checkout"
        );
        if record.failure.is_some() {
            return self.compensate(&mut lease, &record).await;
        }
        if record.step == SagaStep::Charged {
            // Past the pivot: the customer paid, so the order is completed, not undone.
            return match self.finish(&mut lease).await {
                Ok(()) => {
                    self.clear_cart(&lease).await;
                    Ok(true)
                }
                Err(Halt::Failed { held, error }) => self.fail(&mut lease, held, &error).await,
                Err(Halt::Left(error)) => Err(error),
                Err(Halt::Lost) => Ok(false),
            };
        }
        // Before the pivot nobody paid for anything that is sure to be there: undo.
        let interrupted = DomainError::Unavailable("checkout was interrupted".into());
        self.fail(&mut lease, record.step, &interrupted).await
    }
}

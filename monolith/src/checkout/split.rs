//! `checkout_mode = "split"` (the default): the payment provider is called outside any
//! database transaction.
//!
//! 1. One write transaction claims the Idempotency-Key (a pending order at saga step
//!    `started`), reads the cart, quotes it, records lines and total, reserves the stock as
//!    `order-<id>` and moves the order to `charging`. Any failure here rolls all of it back,
//!    the key included, exactly as the single transaction does: a retry starts clean.
//! 2. The charge: the provider call, then the charge recorded under the key `order-<id>`
//!    (payments keeps one charge per key, so a repeat can never charge twice). No
//!    transaction is open while the provider answers, so cart writes and other checkouts
//!    go on meanwhile.
//! 3. A second write transaction moves the order to `charged`, commits the reservation,
//!    confirms the order and empties the cart — all or nothing.
//!
//! A charge that fails is compensated in one write transaction: the reservation released,
//! any charge under the key refunded, the order cancelled and its key freed the way the
//! microservices' saga frees it (`<key>#cancelled#<order id>`), so a retry with the key runs
//! afresh. Every step is a compare-and-set on the order's `saga_version` (the columns the
//! saga uses), so this request and [`super::recovery`] can never both finish one checkout.

use std::time::Instant;

use domain::orders::{CheckoutOutcome, CheckoutRequest, Order, OrderId, OrderStatus};
use domain::payments::Charge;
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;
use store::db_error;
use store::orders::SagaStep;

use super::{DUPLICATE_POLL, MonolithOrders, charge_key, reservation_id};

/// A checkout whose first transaction committed: stock held, nothing charged yet.
pub(super) struct Reserved {
    order_id: OrderId,
    user_id: UserId,
    total_cents: i64,
    /// The `saga_version` the next write must find.
    version: i64,
}

/// What a taken key means for a request that could not claim it.
enum Taken {
    /// The checkout ended; this is the answer.
    Answer(CheckoutOutcome),
    /// The checkout was cancelled meanwhile and its key freed: claim it again.
    Freed,
    /// The checkout is still running (or was abandoned by a process that died).
    Pending(OrderId),
}

/// How the confirming transaction ended.
enum Confirmation {
    Confirmed(Order),
    /// The reservation was released before the confirmation (its TTL passed and the sweeper
    /// gave the stock back): the order cannot be confirmed and the charge must be refunded.
    ReservationGone(DomainError),
    /// Another driver (the recovery loop) took the checkout over first.
    Lost,
}

impl MonolithOrders {
    pub(super) async fn checkout_split(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome> {
        let fingerprint = request.fingerprint();
        let deadline = Instant::now() + self.recover_after;
        loop {
            let claimed = self
                .claim_and_reserve(
                    user_id,
                    idempotency_key,
                    &fingerprint,
                    request.note.as_deref(),
                )
                .await?;
            if let Some(reserved) = claimed {
                return self.charge_and_confirm(reserved).await;
            }
            match self.taken(user_id, idempotency_key, request).await? {
                Taken::Answer(outcome) => return Ok(outcome),
                Taken::Freed => continue,
                Taken::Pending(order_id) => {
                    // A checkout whose process died between its transactions is finished here
                    // rather than left for the next pass of the recovery loop, so a client
                    // retrying after a crash gets its answer now.
                    if self.abandoned(order_id).await? {
                        self.recover(order_id).await?;
                        continue;
                    }
                    // The first request is still at work: wait for its answer, as a second
                    // request in the single transaction waits for the first one's lock.
                    if Instant::now() >= deadline {
                        return Err(DomainError::Unavailable(
                            "the first request with this key is still running".into(),
                        ));
                    }
                    tokio::time::sleep(DUPLICATE_POLL).await;
                }
            }
        }
    }

    /// Step 1; `None` when the key is taken.
    async fn claim_and_reserve(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        fingerprint: &str,
        note: Option<&str>,
    ) -> DomainResult<Option<Reserved>> {
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let claimed = store::orders::start_saga_in(
            &mut transaction,
            user_id,
            idempotency_key,
            fingerprint,
            note,
        )
        .await?;
        let Some(order_id) = claimed else {
            return Ok(None);
        };
        // On error the transaction is dropped, which rolls it back: key, lines and
        // reservation vanish together.
        let (total_cents, reservation_id) = self
            .quote_and_reserve_in(&mut transaction, order_id, user_id)
            .await?;
        let moved = store::orders::advance_saga_in(
            &mut transaction,
            order_id,
            0,
            SagaStep::Charging,
            Some(&reservation_id),
            None,
        )
        .await?;
        if !moved {
            return Err(DomainError::Internal(format!(
                "order {order_id} changed inside the transaction that created it"
            )));
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(Some(Reserved {
            order_id,
            user_id,
            total_cents,
            version: 1,
        }))
    }

    /// Steps 2 and 3, and the compensation when either fails.
    async fn charge_and_confirm(&self, reserved: Reserved) -> DomainResult<CheckoutOutcome> {
        let order_id = reserved.order_id;
        let charge = match self.charge(&reserved).await {
            Ok(charge) => charge,
            Err(error) => {
                self.compensate(&reserved, SagaStep::Charging, &error).await;
                return Err(error);
            }
        };
        match self.confirm(&reserved, &charge).await {
            Ok(Confirmation::Confirmed(order)) => {
                tracing::debug!(
                    order.id = order_id,
                    order.total_cents = reserved.total_cents,
                    "order confirmed"
                );
                Ok(CheckoutOutcome {
                    order,
                    replayed: false,
                })
            }
            Ok(Confirmation::ReservationGone(error)) => {
                self.compensate(&reserved, SagaStep::Charged, &error).await;
                Err(error)
            }
            Ok(Confirmation::Lost) => self.after_lost(&reserved, &charge).await,
            Err(error) => {
                // The charge is recorded, so the recovery loop goes forward with this order
                // (or refunds it if the reservation runs out first).
                tracing::warn!(order.id = order_id, %error, "confirming a charged checkout failed; left for recovery");
                Err(DomainError::Unavailable(
                    "checkout did not finish; retry with the same Idempotency-Key".into(),
                ))
            }
        }
    }

    /// Step 2: the provider call, then the charge recorded once under `order-<id>`. The
    /// insert is one statement committed on its own, outside any transaction of this
    /// checkout: it stands for the provider's ledger, which our transactions cannot roll back.
    ///
    /// Bounded by `payments_timeout_ms`, as the microservices' call to payments is bounded by
    /// its hop timeout: a provider that does not answer fails the checkout (compensated)
    /// instead of holding the stock, and the bound is what lets recovery tell an abandoned
    /// checkout from a slow one. A charge recorded just as the bound passed is found and
    /// refunded by the compensation.
    async fn charge(&self, reserved: &Reserved) -> DomainResult<Charge> {
        let charged = async {
            self.faults.enter(Context::Payments).await?;
            store::payments::call_provider(self.payments_latency).await;
            let mut connection = self.db.writer().acquire().await.map_err(db_error)?;
            store::payments::charge_in(
                &mut connection,
                &charge_key(reserved.order_id),
                reserved.user_id,
                reserved.total_cents,
            )
            .await
        };
        tokio::time::timeout(self.payments_timeout, charged)
            .await
            .unwrap_or_else(|_| {
                Err(DomainError::Unavailable(format!(
                    "the payment provider did not answer within {} ms",
                    self.payments_timeout.as_millis()
                )))
            })
    }

    /// Step 3, in one write transaction.
    async fn confirm(&self, reserved: &Reserved, charge: &Charge) -> DomainResult<Confirmation> {
        let order_id = reserved.order_id;
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let moved = store::orders::advance_saga_in(
            &mut transaction,
            order_id,
            reserved.version,
            SagaStep::Charged,
            None,
            Some(&charge.id),
        )
        .await?;
        if !moved {
            return Ok(Confirmation::Lost);
        }
        if let Err(gone) = commit_reservation_in(&mut transaction, order_id).await? {
            // Dropping the transaction rolls the step back; the compensation records it.
            return Ok(Confirmation::ReservationGone(gone));
        }
        // `true`: the reservation is committed in this same transaction, so no commit is
        // ever owed here (the saga's owed commit, `micro/orders`, has no counterpart).
        let confirmed =
            store::orders::confirm_saga_in(&mut transaction, order_id, reserved.version + 1, true)
                .await?;
        if !confirmed {
            return Err(DomainError::Internal(format!(
                "order {order_id} changed inside its confirming transaction"
            )));
        }
        store::cart::clear_in(&mut transaction, reserved.user_id).await?;
        let order = store::orders::get_in(&mut transaction, reserved.user_id, order_id).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(Confirmation::Confirmed(order))
    }

    /// Undoes a checkout this request still drives; a failure is logged and left for the
    /// recovery loop (the client is told the step's own failure either way).
    async fn compensate(&self, reserved: &Reserved, held: SagaStep, error: &DomainError) {
        let undone = async {
            let mut transaction = self.db.begin_write().await.map_err(db_error)?;
            let cancelled = cancel_in(
                &mut transaction,
                reserved.order_id,
                reserved.version,
                Some((held, error)),
            )
            .await?;
            transaction.commit().await.map_err(db_error)?;
            DomainResult::Ok(cancelled)
        };
        match undone.await {
            Ok(true) => {
                tracing::info!(order.id = reserved.order_id, %error, "checkout compensated and cancelled")
            }
            Ok(false) => {
                tracing::info!(
                    order.id = reserved.order_id,
                    "another driver took the failed checkout over"
                )
            }
            Err(undo_error) => {
                tracing::warn!(order.id = reserved.order_id, error = %undo_error, "compensation did not finish; the recovery loop will")
            }
        }
    }

    /// The recovery loop finished this checkout while the provider answered. It confirmed
    /// the order if it found the charge; if it cancelled the order before the charge was
    /// recorded, that charge is refunded here (a refund is made once per charge, so a refund
    /// the recovery already made is not repeated).
    async fn after_lost(
        &self,
        reserved: &Reserved,
        charge: &Charge,
    ) -> DomainResult<CheckoutOutcome> {
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let order =
            store::orders::get_any_in(&mut transaction, reserved.user_id, reserved.order_id)
                .await?;
        if order.status == OrderStatus::Confirmed {
            return Ok(CheckoutOutcome {
                order,
                replayed: false,
            });
        }
        if order.status == OrderStatus::Cancelled {
            store::payments::refund_in(&mut transaction, &charge.id).await?;
            transaction.commit().await.map_err(db_error)?;
        }
        Err(DomainError::Unavailable(
            "checkout was interrupted; retry with the same Idempotency-Key".into(),
        ))
    }

    /// What a taken key means for a request that could not claim it.
    async fn taken(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<Taken> {
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        let Some(stored) =
            store::orders::find_by_key_in(&mut connection, user_id, idempotency_key).await?
        else {
            return Ok(Taken::Freed);
        };
        if stored.fingerprint != request.fingerprint() {
            return Err(DomainError::Invalid(
                "Idempotency-Key was already used with a different request".into(),
            ));
        }
        match stored.order.status {
            OrderStatus::Confirmed => Ok(Taken::Answer(CheckoutOutcome {
                order: stored.order,
                replayed: true,
            })),
            OrderStatus::Pending => Ok(Taken::Pending(stored.order.id)),
            // Only a key spelled like a freed one (`k#cancelled#7`) lands here.
            OrderStatus::Cancelled => Err(DomainError::Invalid(
                "Idempotency-Key was already used".into(),
            )),
        }
    }

    /// Whether a pending checkout was left by a driver that is gone: it stopped while
    /// compensating, or it has been silent for longer than a live one can be.
    async fn abandoned(&self, order_id: OrderId) -> DomainResult<bool> {
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        let Some(record) = store::orders::saga_in(&mut connection, order_id).await? else {
            return Ok(false);
        };
        let silent_since_ms = now_ms() - self.recover_after_ms();
        Ok(record.status == OrderStatus::Pending
            && (record.failure.is_some() || record.updated_at_ms < silent_since_ms))
    }

    pub(super) fn recover_after_ms(&self) -> i64 {
        i64::try_from(self.recover_after.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Commits `order-<id>`. The inner `Err` is a reservation that is no longer held (released
/// by the sweeper, or never made): a `Conflict` for the client.
pub(super) async fn commit_reservation_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
) -> DomainResult<Result<(), DomainError>> {
    match store::inventory::commit_in(connection, &reservation_id(order_id)).await {
        Ok(_) => Ok(Ok(())),
        Err(error @ (DomainError::Conflict(_) | DomainError::NotFound(_))) => {
            Ok(Err(DomainError::Conflict(format!(
                "the stock reservation ran out before checkout finished ({error})"
            ))))
        }
        Err(error) => Err(error),
    }
}

/// Cancels a pending checkout at `version` on the caller's write transaction: records the
/// failure (when it is not recorded yet), releases the reservation, refunds any charge made
/// under the order's key, and frees the key. `false` when another driver moved it first.
pub(super) async fn cancel_in(
    connection: &mut AnyConnection,
    order_id: OrderId,
    mut version: i64,
    failure: Option<(SagaStep, &DomainError)>,
) -> DomainResult<bool> {
    if let Some((held, error)) = failure {
        let moved = store::orders::fail_saga_in(
            connection,
            order_id,
            version,
            held,
            error.code(),
            &error.to_string(),
        )
        .await?;
        if !moved {
            return Ok(false);
        }
        version += 1;
    }
    match store::inventory::release_in(connection, &reservation_id(order_id)).await {
        Ok(_) | Err(DomainError::NotFound(_)) => {}
        // Only the confirming transaction commits a reservation, and it confirms the order
        // in the same transaction, so a committed reservation under a pending order is a
        // broken invariant: refuse to cancel (rolling back) rather than hide it.
        Err(error) => return Err(error),
    }
    if let Some(charge) = store::payments::find_charge_in(connection, &charge_key(order_id)).await?
    {
        store::payments::refund_in(connection, &charge.id).await?;
    }
    let cancelled = store::orders::cancel_saga_in(connection, order_id, version).await?;
    if !cancelled {
        return Err(DomainError::Internal(format!(
            "order {order_id} changed inside its cancelling transaction"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests;

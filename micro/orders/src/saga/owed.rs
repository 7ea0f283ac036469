//! The owed stock commit, settled by the recovery loop: a confirmed order whose reservation
//! inventory did not commit when the saga asked (status `confirmed`, step `charged`) is
//! committed on a later pass, or — when the reservation ran out first — refunded and
//! cancelled (the apology). The states and why the commit is owed: [`super`]'s "The owed
//! stock commit".

use domain::{DomainError, DomainResult};
use store::orders::SagaRecord;

use super::{Lease, SagaOrders, reservation_id};

impl SagaOrders {
    /// Commits the owed reservation of a confirmed order and marks the saga done: `Ok(true)`
    /// once settled either way (committed, or refunded and cancelled), `Ok(false)` when
    /// another driver holds it, `Err` when inventory or payments still do not answer (the
    /// next pass tries again).
    pub(crate) async fn settle_owed_commit(&self, record: &SagaRecord) -> DomainResult<bool> {
        let Some(mut lease) = self.lease(record).await? else {
            return Ok(false);
        };
        match self
            .upstreams
            .inventory
            .commit(&reservation_id(record.order_id))
            .await
        {
            Ok(_) => {
                let mut connection = self.writer().await?;
                let settled = store::orders::settle_stock_commit_in(
                    &mut connection,
                    record.order_id,
                    lease.version,
                )
                .await?;
                if settled {
                    tracing::info!(
                        order.id = record.order_id,
                        "owed stock commit of a confirmed order made"
                    );
                }
                Ok(settled)
            }
            Err(error @ (DomainError::Conflict(_) | DomainError::NotFound(_))) => {
                self.apologize(&mut lease, record, &error).await
            }
            Err(error) => Err(error),
        }
    }

    /// The apology: inventory stayed unreachable past the reservation's TTL, its sweeper gave
    /// the units back (perhaps sold again since), so the confirmed order cannot be delivered.
    /// The charge is refunded, then the order cancelled. Both are idempotent and inventory
    /// refuses a released reservation's commit for ever, so a pass that stops halfway (payments
    /// did not answer) ends the same way on the next one. The monolith never needs this: its
    /// checkout commits the stock with the order.
    async fn apologize(
        &self,
        lease: &mut Lease,
        record: &SagaRecord,
        error: &DomainError,
    ) -> DomainResult<bool> {
        let charge_id = record.charge_id.as_deref().ok_or_else(|| {
            DomainError::Internal(format!(
                "confirmed order {} has no charge recorded",
                record.order_id
            ))
        })?;
        self.upstreams.payments.refund(charge_id).await?;
        let reason = format!(
            "the stock reservation ran out before inventory answered the commit; the charge was refunded ({error})"
        );
        let mut connection = self.writer().await?;
        let cancelled = store::orders::apologize_in(
            &mut connection,
            record.order_id,
            lease.version,
            "conflict",
            &reason,
        )
        .await?;
        if cancelled {
            lease.version += 1;
            self.metrics.apology();
            // Logged at error level: a customer was told "confirmed" and now is not.
            tracing::error!(order.id = record.order_id, charge.id = charge_id, %error, "confirmed order cancelled and refunded: its reservation ran out before the owed stock commit");
        }
        Ok(cancelled)
    }
}

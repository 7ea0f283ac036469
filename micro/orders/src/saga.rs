//! Checkout as an orchestrated saga owned by `orders`: the microservices' answer to the
//! monolith's one ACID transaction, with the same observable contract.
//!
//! # Steps
//! Each step is idempotent, and the saga's progress (`orders.saga_step`, see
//! [`store::orders::SagaStep`]) is written to the orders database *before* the remote call
//! it announces, so whoever reads the row knows what may be held elsewhere:
//!
//! 1. `started` — claim the idempotency key by inserting a pending order.
//! 2. read the cart (empty: `Invalid`), quote it with `catalog` (a product gone:
//!    `Conflict`), record lines and total — `quoted`.
//! 3. `reserving` — reserve stock as `order-<id>` with the reservation TTL (short: `Conflict`).
//! 4. `charging` — charge `order-<id>` (payments keeps one charge per key).
//! 5. `charged` — the pivot: the customer has paid, so from here the saga only goes forward:
//!    ask inventory once to commit the reservation (the hop retries within its budget),
//!    confirm the order, then empty the cart (best effort: a failure is logged and the order
//!    stays confirmed). Committed: status `confirmed`, step `done`.
//!
//! # The owed stock commit
//! When inventory does not answer the commit (no answer, a timeout, a 5xx — not `Conflict`
//! or `NotFound`), the order is confirmed all the same and the client gets it: status
//! `confirmed` with the step still `charged` ("confirmed, stock commit pending";
//! `stock_commit_pending` in the audit). The units are held for the order until the
//! reservation's TTL, and committing later is as good as now, so a checkout waits for one
//! inventory call (the reserve), as the monolith's enters inventory once; waiting for the
//! commit too would make a partial fault in inventory count twice against every checkout.
//! The recovery loop ([`crate::recovery`]) makes owed commits on its next pass and moves
//! them to `done`. States and transitions past the pivot:
//!
//! ```text
//! pending/charged --commit ok--------------------------> confirmed/done
//! pending/charged --no answer--------------------------> confirmed/charged (owed)
//! pending/charged --Conflict/NotFound------------------> compensate: refund, cancelled/done
//! confirmed/charged --recovery: commit ok--------------> confirmed/done
//! confirmed/charged --recovery: Conflict/NotFound------> refund, cancelled/done (apology)
//! ```
//!
//! The apology: a commit refused because the reservation ran out means inventory stayed
//! unreachable for longer than `reservation_ttl_ms` (30 s) and its sweeper gave the units
//! back, perhaps to another buyer; the charge is refunded and the confirmed order cancelled,
//! logged at error level and counted (`checkout_apologies_total`). The key stays with the
//! cancelled order, so a replay is told what became of it (`Conflict`) rather than buying
//! again. The monolith never needs it: its checkout commits the stock with the order.
//!
//! # Compensation
//! A step that fails before the pivot turns the saga into a compensating one (the failure
//! is recorded with the step, which says what may be held) and undoes, in order: release
//! `order-<id>` (a `NotFound` means it never existed), refund the charge if one may exist,
//! cancel the order. A charge call that timed out may or may not have happened; payments
//! keeps one charge per key, so charging `order-<id>` again returns the first charge or
//! creates it, and either way there is then exactly one charge to refund. Every undo is
//! idempotent, so compensating twice is harmless. When a service cannot be reached to undo,
//! the saga stays compensating for the recovery loop; inventory's TTL sweeper is the last line
//! of defence for reservations. The client is told the step's failure either way: `Conflict`
//! and `Invalid` as in the monolith, `Unavailable` (503) when a service did not answer.
//!
//! # Retries and the caller's deadline
//! Every remote step (reserve, charge, commit, release, refund, and reading the cart and the
//! prices) is an idempotent call keyed by the order, so the hop retries it after a jittered
//! backoff when it fails to answer, paid from the retry budget (`micro_rpc::upstream`): a
//! partial fault in one service costs a checkout a retry, not the checkout. The steps up to
//! the charge run inside the caller's deadline, so no step starts once the gateway stopped
//! waiting; what is owed whether or not anyone waits — the steps past the pivot, and
//! compensation — runs without it (`micro_rpc::deadline::without_deadline`).
//!
//! # Idempotency and the freed key
//! Same key and request: the confirmed order again, `replayed` (confirmed also while its
//! stock commit is owed). Same key, another request:
//! `Invalid`. Same key while the first is still pending: `Unavailable`. The monolith frees the
//! key of a failed checkout by rolling back; a saga has already written its order, so a
//! cancelled order's key is rewritten to `<key>#cancelled#<order id>` — the order stays for
//! the audit and a retry with the key runs afresh.
//!
//! # Who may move a saga
//! Every write is a compare-and-set on `orders.saga_version`, so the request that started a
//! saga, the recovery loop and other `orders` replicas can never move the same saga at once:
//! a driver whose write fails has lost the saga and stops.

use std::sync::Arc;
use std::time::Duration;

use api::metrics::CheckoutMetrics;
use async_trait::async_trait;
use domain::cart::{Cart, CartLine};
use domain::catalog::{Catalog, ProductId};
use domain::faults::Faults;
use domain::inventory::{Inventory, StockLine};
use domain::orders::{CheckoutOutcome, CheckoutRequest, Order, OrderId, OrderLine, Orders};
use domain::payments::Payments;
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult};
use micro_rpc::deadline::without_deadline;
use store::orders::{SagaRecord, SagaStep};
use store::{Db, db_error};

mod owed;

/// The contexts a checkout calls.
pub struct Upstreams {
    pub cart: Arc<dyn Cart>,
    pub catalog: Arc<dyn Catalog>,
    pub inventory: Arc<dyn Inventory>,
    pub payments: Arc<dyn Payments>,
}

/// `domain::orders::Orders` as a saga over the other contexts' HTTP APIs.
pub struct SagaOrders {
    db: Db,
    faults: Faults,
    upstreams: Upstreams,
    metrics: CheckoutMetrics,
    reservation_ttl_ms: i64,
    /// How long a request whose key is held by a pending saga waits for it to end.
    duplicate_wait: Duration,
}

/// What a taken key means for a new request with it.
enum Taken {
    /// The saga ended; this is the answer.
    Answer(CheckoutOutcome),
    /// The saga was cancelled meanwhile and its key freed: claim it again.
    Freed,
    /// The saga is still running (or was left compensating by a driver that gave up).
    Pending(OrderId),
}

/// How often a duplicate request looks at the saga it waits for. The first request writes
/// the row before every step, so this is polling a database row, not guessing a duration.
const DUPLICATE_POLL: Duration = Duration::from_millis(20);

/// A driver's hold on one saga: its next write must find `version` in the row.
pub(crate) struct Lease {
    order_id: OrderId,
    user_id: UserId,
    version: i64,
}

/// Why a driver stopped before the saga finished.
pub(crate) enum Halt {
    /// A step failed; `held` is what may be held elsewhere and must be given back.
    Failed { held: SagaStep, error: DomainError },
    /// The saga could not be moved on (the database did not answer past the pivot); it
    /// stays as recorded and the recovery loop finishes it.
    Left(DomainError),
    /// Another driver moved the saga first; this one must not touch it again.
    Lost,
}

impl SagaOrders {
    /// `duplicate_wait`: how long a second request with a key in use waits for the first
    /// one's saga before answering 503. The monolith's database makes such a request wait for
    /// the first transaction; waiting here gives the same answer (the first request's) instead
    /// of an avoidable 503.
    pub fn new(
        db: Db,
        faults: Faults,
        upstreams: Upstreams,
        metrics: CheckoutMetrics,
        reservation_ttl_ms: i64,
        duplicate_wait: Duration,
    ) -> SagaOrders {
        SagaOrders {
            db,
            faults,
            upstreams,
            metrics,
            reservation_ttl_ms,
            duplicate_wait,
        }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Steps 2 to 5 for a freshly claimed saga.
    async fn forward(&self, lease: &mut Lease) -> Result<(), Halt> {
        let failed = |held| move |error| Halt::Failed { held, error };
        let cart = self
            .upstreams
            .cart
            .lines(lease.user_id)
            .await
            .map_err(failed(SagaStep::Started))?;
        if cart.is_empty() {
            return Err(failed(SagaStep::Started)(DomainError::Invalid(
                "the cart is empty".into(),
            )));
        }
        let lines = self.quote(&cart).await.map_err(failed(SagaStep::Started))?;
        let total_cents = self.record_quote(lease, &lines).await?;

        self.advance(lease, SagaStep::Reserving, None, None).await?;
        let reservation_id = reservation_id(lease.order_id);
        let stock_lines: Vec<StockLine> = cart
            .iter()
            .map(|line| StockLine {
                product_id: line.product_id,
                quantity: line.quantity,
            })
            .collect();
        self.upstreams
            .inventory
            .reserve(&reservation_id, &stock_lines, self.reservation_ttl_ms)
            .await
            .map_err(failed(SagaStep::Reserving))?;
        let advanced = self
            .advance(lease, SagaStep::Charging, Some(&reservation_id), None)
            .await;
        if let Err(Halt::Lost) = advanced {
            // Whoever took the saga over saw `reserving` and compensates; its release may
            // have run before this reserve landed, so give back what this driver just took.
            if let Err(error) = self.release(&reservation_id).await {
                tracing::warn!(order.id = lease.order_id, %error, "releasing after losing the saga failed; the TTL sweeper will");
            }
        }
        advanced?;

        let charge = self
            .upstreams
            .payments
            .charge(&charge_key(lease.order_id), lease.user_id, total_cents)
            .await
            .map_err(|error| {
                // An answer that refuses the charge means none was made; anything else (no
                // answer, a timeout, a 5xx) may hide a charge that happened.
                let held = if charge_may_exist(&error) {
                    SagaStep::Charging
                } else {
                    SagaStep::Reserving
                };
                Halt::Failed { held, error }
            })?;
        // Lost here needs nothing more: the other driver charges the same key, which finds
        // this charge, and refunds it.
        // From here on the customer has paid: finishing is owed whether or not the caller
        // still waits, so the caller's deadline no longer cuts these steps short.
        without_deadline(async {
            self.advance(lease, SagaStep::Charged, None, Some(&charge.id))
                .await?;
            self.finish(lease).await
        })
        .await
    }

    /// Past the pivot: ask inventory once to commit the reservation, and confirm the order
    /// — with the stock committed, or with the commit owed when inventory did not answer.
    pub(crate) async fn finish(&self, lease: &mut Lease) -> Result<(), Halt> {
        let stock_committed = match self
            .upstreams
            .inventory
            .commit(&reservation_id(lease.order_id))
            .await
        {
            Ok(_) => true,
            // The reservation was released (its TTL passed and inventory's sweeper gave the
            // stock back, which may already be sold again): the order cannot be confirmed,
            // so the saga refunds instead.
            Err(error @ (DomainError::Conflict(_) | DomainError::NotFound(_))) => {
                return Err(Halt::Failed {
                    held: SagaStep::Charged,
                    error: DomainError::Conflict(format!(
                        "the stock reservation ran out before checkout finished ({error})"
                    )),
                });
            }
            // Inventory did not answer (a fault, a timeout, a 5xx). The units are held for
            // this order until the reservation's TTL, and committing them later is as good
            // as now, so the customer who paid is not kept waiting for a second call into a
            // failing context: the order is confirmed and the commit owed to the recovery
            // loop. This is what keeps one inventory call, not two, in a checkout's path.
            Err(error) => {
                tracing::warn!(order.id = lease.order_id, %error, "inventory did not answer the stock commit; the order is confirmed and the commit owed");
                false
            }
        };
        let mut connection = self.writer().await.map_err(Halt::Left)?;
        match store::orders::confirm_saga_in(
            &mut connection,
            lease.order_id,
            lease.version,
            stock_committed,
        )
        .await
        {
            Ok(true) => {
                lease.version += 1;
                if !stock_committed {
                    self.metrics.stock_commit_owed();
                }
                Ok(())
            }
            Ok(false) => Err(Halt::Lost),
            Err(error) => Err(Halt::Left(error)),
        }
    }

    /// Records the failure (moving the saga to compensating) and compensates. Returns
    /// whether the saga reached `cancelled`.
    pub(crate) async fn fail(
        &self,
        lease: &mut Lease,
        held: SagaStep,
        error: &DomainError,
    ) -> DomainResult<bool> {
        let mut connection = self.writer().await?;
        let moved = store::orders::fail_saga_in(
            &mut connection,
            lease.order_id,
            lease.version,
            held,
            error.code(),
            &error.to_string(),
        )
        .await?;
        drop(connection);
        if !moved {
            return Ok(false);
        }
        lease.version += 1;
        let record = self.record(lease.order_id).await?;
        self.compensate(lease, &record).await
    }

    /// Gives back whatever `record.step` says may be held, then cancels the order and frees
    /// its key. Every call is idempotent; an `Err` leaves the saga compensating.
    pub(crate) async fn compensate(
        &self,
        lease: &mut Lease,
        record: &SagaRecord,
    ) -> DomainResult<bool> {
        if record.step >= SagaStep::Reserving {
            self.release(&reservation_id(record.order_id)).await?;
        }
        if record.step >= SagaStep::Charging {
            let charge_id = match &record.charge_id {
                Some(charge_id) => charge_id.clone(),
                // Whether the charge happened is unknown: charging the same key again
                // returns it, or makes it, and either way it is refunded next.
                None => {
                    self.upstreams
                        .payments
                        .charge(
                            &charge_key(record.order_id),
                            record.user_id,
                            record.total_cents,
                        )
                        .await?
                        .id
                }
            };
            self.upstreams.payments.refund(&charge_id).await?;
        }
        let mut connection = self.writer().await?;
        let cancelled =
            store::orders::cancel_saga_in(&mut connection, lease.order_id, lease.version).await?;
        if cancelled {
            lease.version += 1;
            tracing::info!(
                order.id = record.order_id,
                saga.step = record.step.as_str(),
                "checkout compensated and cancelled"
            );
        }
        Ok(cancelled)
    }

    /// Releases `order-<id>`; a reservation that never existed needs no release.
    async fn release(&self, reservation_id: &str) -> DomainResult<()> {
        match self.upstreams.inventory.release(reservation_id).await {
            Ok(_) | Err(DomainError::NotFound(_)) => Ok(()),
            // Only a forward driver commits, and only a reservation the compensation did not
            // find committed would be released, so this is a broken invariant: say so loudly
            // and carry on giving back the rest.
            Err(DomainError::Conflict(message)) => {
                tracing::error!(reservation.id = reservation_id, %message, "compensation found the reservation committed");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Prices the cart at the catalog's current prices.
    async fn quote(&self, cart: &[CartLine]) -> DomainResult<Vec<OrderLine>> {
        let ids: Vec<ProductId> = cart.iter().map(|line| line.product_id).collect();
        let products = self.upstreams.catalog.get_many(&ids).await?;
        domain::orders::quote(cart, &products)
    }

    /// `started` -> `quoted` and the lines, in one local transaction.
    async fn record_quote(&self, lease: &mut Lease, lines: &[OrderLine]) -> Result<i64, Halt> {
        let local = async {
            let mut transaction = self.db.begin_write().await.map_err(db_error)?;
            let moved = store::orders::advance_saga_in(
                &mut transaction,
                lease.order_id,
                lease.version,
                SagaStep::Quoted,
                None,
                None,
            )
            .await?;
            if !moved {
                return Ok(None);
            }
            let total_cents =
                store::orders::record_lines_in(&mut transaction, lease.order_id, lines).await?;
            transaction.commit().await.map_err(db_error)?;
            Ok(Some(total_cents))
        };
        match local.await {
            Ok(Some(total_cents)) => {
                lease.version += 1;
                Ok(total_cents)
            }
            Ok(None) => Err(Halt::Lost),
            // Nothing is held yet, so this failure compensates like any other.
            Err(error) => Err(Halt::Failed {
                held: SagaStep::Started,
                error,
            }),
        }
    }

    /// Records the next step before the call it announces.
    async fn advance(
        &self,
        lease: &mut Lease,
        step: SagaStep,
        reservation_id: Option<&str>,
        charge_id: Option<&str>,
    ) -> Result<(), Halt> {
        let mut connection = self.writer().await.map_err(Halt::Left)?;
        match store::orders::advance_saga_in(
            &mut connection,
            lease.order_id,
            lease.version,
            step,
            reservation_id,
            charge_id,
        )
        .await
        {
            Ok(true) => {
                lease.version += 1;
                Ok(())
            }
            Ok(false) => Err(Halt::Lost),
            Err(error) => Err(Halt::Left(error)),
        }
    }

    pub(crate) async fn record(&self, order_id: OrderId) -> DomainResult<SagaRecord> {
        let mut connection = self.writer().await?;
        store::orders::saga_in(&mut connection, order_id)
            .await?
            .ok_or_else(|| DomainError::Internal(format!("saga {order_id} vanished")))
    }

    /// Takes an abandoned saga over, or `None` when another driver holds it.
    pub(crate) async fn lease(&self, record: &SagaRecord) -> DomainResult<Option<Lease>> {
        let mut connection = self.writer().await?;
        let leased =
            store::orders::lease_saga_in(&mut connection, record.order_id, record.version).await?;
        Ok(leased.then(|| Lease {
            order_id: record.order_id,
            user_id: record.user_id,
            version: record.version + 1,
        }))
    }

    /// Empties the cart of a confirmed order. Best effort, as promised: the order is
    /// confirmed whatever happens here.
    pub(crate) async fn clear_cart(&self, lease: &Lease) {
        if let Err(error) = self.upstreams.cart.clear(lease.user_id).await {
            tracing::warn!(order.id = lease.order_id, %error, "emptying the cart after checkout failed");
        }
    }

    /// Reads through the one-connection writer on SQLite as well: the saga's own writes must
    /// be visible to its next read.
    async fn writer(&self) -> DomainResult<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.db.writer().acquire().await.map_err(db_error)
    }

    /// What a taken key means for a request that could not claim it.
    async fn replay(
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
            domain::orders::OrderStatus::Confirmed => Ok(Taken::Answer(CheckoutOutcome {
                order: stored.order,
                replayed: true,
            })),
            domain::orders::OrderStatus::Pending => Ok(Taken::Pending(stored.order.id)),
            // A key spelled like a freed one (`k#cancelled#7`).
            domain::orders::OrderStatus::Cancelled
                if stored
                    .idempotency_key
                    .ends_with(&format!("#cancelled#{}", stored.order.id)) =>
            {
                Err(DomainError::Invalid(
                    "Idempotency-Key was already used".into(),
                ))
            }
            // The apology kept the key: the request was answered "confirmed", and a replay
            // must learn what became of it rather than buy again.
            domain::orders::OrderStatus::Cancelled => Err(DomainError::Conflict(format!(
                "order {} was confirmed, then cancelled and refunded: its stock reservation ran out while inventory was unreachable",
                stored.order.id
            ))),
        }
    }

    async fn order(&self, user_id: UserId, order_id: OrderId) -> DomainResult<Order> {
        let mut connection = self.writer().await?;
        store::orders::get_any_in(&mut connection, user_id, order_id).await
    }

    /// Runs a saga this request just claimed, and turns how it ended into the answer.
    async fn run(&self, mut lease: Lease) -> DomainResult<CheckoutOutcome> {
        let order_id = lease.order_id;
        match self.forward(&mut lease).await {
            Ok(()) => {
                self.clear_cart(&lease).await;
                tracing::debug!(order.id = order_id, "order confirmed");
            }
            Err(Halt::Failed { held, error }) => {
                // Giving back what is held is owed whether or not the caller still waits.
                match without_deadline(self.fail(&mut lease, held, &error)).await {
                    Ok(true) => {}
                    Ok(false) => tracing::info!(
                        order.id = order_id,
                        "another driver took the failed saga over"
                    ),
                    Err(undo_error) => tracing::warn!(
                        order.id = order_id,
                        error = %undo_error,
                        "compensation did not finish; the recovery loop will"
                    ),
                }
                return Err(error);
            }
            Err(Halt::Left(error)) => {
                tracing::warn!(order.id = order_id, %error, "checkout left for the recovery loop");
                return Err(DomainError::Unavailable(
                    "checkout did not finish; retry with the same Idempotency-Key".into(),
                ));
            }
            Err(Halt::Lost) => {
                // Another driver finished it; the answer is whatever it decided.
                tracing::info!(order.id = order_id, "another driver took the saga over");
            }
        }
        let order = self.order(lease.user_id, order_id).await?;
        if order.status != domain::orders::OrderStatus::Confirmed {
            return Err(DomainError::Unavailable(
                "checkout did not finish; retry with the same Idempotency-Key".into(),
            ));
        }
        Ok(CheckoutOutcome {
            order,
            replayed: false,
        })
    }
}

#[async_trait]
impl Orders for SagaOrders {
    async fn checkout(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome> {
        self.faults.enter(Context::Orders).await?;
        let fingerprint = request.fingerprint();
        let deadline = tokio::time::Instant::now() + self.duplicate_wait;
        loop {
            let mut connection = self.writer().await?;
            let claimed = store::orders::start_saga_in(
                &mut connection,
                user_id,
                idempotency_key,
                &fingerprint,
                request.note.as_deref(),
            )
            .await?;
            drop(connection);
            if let Some(order_id) = claimed {
                let lease = Lease {
                    order_id,
                    user_id,
                    version: 0,
                };
                return self.run(lease).await;
            }
            match self.replay(user_id, idempotency_key, request).await? {
                Taken::Answer(outcome) => return Ok(outcome),
                // Cancelled just now: the key is free, claim it.
                Taken::Freed => continue,
                Taken::Pending(order_id) => {
                    // A saga whose driver gave up while compensating (a service did not
                    // answer) is finished here rather than left for the recovery loop, so a
                    // client retrying after the fault heals gets its order now. The version
                    // check keeps this from racing a driver that is still at work.
                    let record = self.record(order_id).await?;
                    if record.failure.is_some() {
                        match without_deadline(self.recover(order_id)).await {
                            Ok(_) => continue,
                            Err(error) => return Err(error),
                        }
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(DomainError::Unavailable(
                            "the first request with this key is still running".into(),
                        ));
                    }
                    tokio::time::sleep(DUPLICATE_POLL).await;
                }
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

/// The reservation of an order: chosen by orders, so a retried reserve is the same one.
pub fn reservation_id(order_id: OrderId) -> String {
    format!("order-{order_id}")
}

/// The payments idempotency key of an order: one charge per order, however often asked.
pub fn charge_key(order_id: OrderId) -> String {
    format!("order-{order_id}")
}

/// Whether a failed charge call may still have charged: only an answer that refuses the
/// charge proves it did not happen.
fn charge_may_exist(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::Unavailable(_) | DomainError::Internal(_)
    )
}

//! The invariant checker: reads the shop's audit snapshot (`GET /admin/audit`) and, when
//! given, the load run's request history, and reports whether any order, unit of stock or
//! cent was lost — the same checker for both builds.
//!
//! The invariants, and where each is checked:
//! - I1 stock conserved, I2 no oversell, I8 no reservation left held: [`stock`].
//! - I5 one order/reservation/charge per idempotency key, I6 every confirmed order has one
//!   committed reservation and one charge of its total, I7 money conserved, I9 every
//!   committed reservation belongs to exactly one confirmed order (I6 the other way round:
//!   together they pair confirmed orders and sold stock one to one): [`orders`].
//! - I3 acknowledged orders exist, I4 no order no client asked for, and the resolution of
//!   maybe-applied checkouts: [`history`] — only when a history is given.
//!
//! # How the contexts' records are linked
//! Both builds name an order's stock reservation and its payments idempotency key
//! `order-<order id>` (`monolith/src/checkout.rs`; `micro_orders::saga::reservation_id` and
//! `charge_key`), so that is how the checker finds them. A saga that compensated keeps its
//! cancelled order with the client's key rewritten to `<key>#cancelled#<order id>`, which the
//! checker reads back as the client's key ([`client_key`]).

mod command;
mod history;
mod orders;
mod stock;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use domain::admin::{Audit, OrderAudit};
use domain::inventory::Reservation;
use domain::orders::OrderStatus;
use domain::payments::Charge;

use loadtest_results::history::RequestRecord;
pub use loadtest_results::invariants::{CheckReport, InvariantResult, MaybeApplied, NOT_CHECKED};

pub use command::{CheckArgs, run};

/// Checks I1–I9 on `audit`; I3 and I4 need `history` and are reported as not checked
/// without it. Run it after quiescence: a checkout still in flight holds a reservation
/// (I8), or has committed it for an order not yet confirmed (I9).
pub fn check(audit: &Audit, history: Option<&[RequestRecord]>) -> CheckReport {
    let index = Index::new(audit);
    let (i3, i4, maybe_applied) = match history {
        Some(history) => (
            Some(history::acknowledged_orders_exist(&index, history)),
            Some(history::no_order_nobody_asked_for(&index, history)),
            Some(history::resolve_maybe_applied(&index, history)),
        ),
        None => (None, None, None),
    };
    let invariants = vec![
        result(
            "I1",
            "stock conserved per product",
            Some(stock::stock_conserved(&index)),
        ),
        result("I2", "no oversell", Some(stock::no_oversell(&index))),
        result(
            "I3",
            "every acknowledged order exists with the same total",
            i3,
        ),
        result("I4", "no order that no client asked for", i4),
        result(
            "I5",
            "per idempotency key at most one order, one reservation, one charge",
            Some(orders::one_of_each_per_key(&index)),
        ),
        result(
            "I6",
            "every confirmed order has one committed reservation and one charge of its total",
            Some(orders::confirmed_orders_complete(&index)),
        ),
        result(
            "I7",
            "money conserved (charges - refunds = confirmed totals)",
            Some(orders::money_conserved(&index)),
        ),
        result(
            "I8",
            "no reservation left held after quiescence",
            Some(stock::nothing_left_held(&index)),
        ),
        result(
            "I9",
            "every committed reservation belongs to exactly one confirmed order",
            Some(orders::committed_reservations_owned_once(&index)),
        ),
    ];
    CheckReport {
        valid: invariants.iter().all(|invariant| invariant.violations == 0),
        invariants,
        maybe_applied,
    }
}

/// Reads the audit snapshot from `GET {admin_url}/admin/audit` (`Authorization: Bearer`).
/// The monolith serves `/admin` on its public port; the micro gateway on its admin port.
pub async fn fetch_audit(admin_url: &str, admin_token: &str) -> anyhow::Result<Audit> {
    // Generous: the snapshot of a long run holds every order, reservation and charge.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("build an http client")?;
    let url = format!("{}/admin/audit", admin_url.trim_end_matches('/'));
    let response = http
        .get(&url)
        .bearer_auth(admin_token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("GET {url} answered {status}: {body}");
    }
    response
        .json()
        .await
        .with_context(|| format!("parse the audit from {url}"))
}

/// Violations of one invariant as they are found: a count and the first one in words.
#[derive(Default)]
struct Findings {
    violations: usize,
    first_example: Option<String>,
}

impl Findings {
    fn add(&mut self, example: String) {
        self.violations += 1;
        self.first_example.get_or_insert(example);
    }
}

fn result(id: &str, name: &str, findings: Option<Findings>) -> InvariantResult {
    let (checked, violations, first_example) = match findings {
        Some(findings) => (true, findings.violations, findings.first_example),
        None => (false, 0, Some(NOT_CHECKED.to_owned())),
    };
    InvariantResult {
        id: id.to_owned(),
        name: name.to_owned(),
        checked,
        violations,
        first_example,
    }
}

/// The audit with the lookups every invariant needs, built once.
struct Index<'a> {
    audit: &'a Audit,
    orders: HashMap<i64, &'a OrderAudit>,
    reservations: HashMap<&'a str, &'a Reservation>,
    /// Charges by their payments idempotency key.
    charges: HashMap<&'a str, Vec<&'a Charge>>,
    /// Refunded cents by charge id.
    refunded_cents: HashMap<&'a str, i64>,
}

impl<'a> Index<'a> {
    fn new(audit: &'a Audit) -> Index<'a> {
        let mut charges: HashMap<&str, Vec<&Charge>> = HashMap::new();
        for charge in &audit.charges {
            charges
                .entry(charge.idempotency_key.as_str())
                .or_default()
                .push(charge);
        }
        let mut refunded_cents: HashMap<&str, i64> = HashMap::new();
        for refund in &audit.refunds {
            *refunded_cents.entry(refund.charge_id.as_str()).or_default() += refund.amount_cents;
        }
        Index {
            audit,
            orders: audit.orders.iter().map(|order| (order.id, order)).collect(),
            reservations: audit
                .reservations
                .iter()
                .map(|reservation| (reservation.id.as_str(), reservation))
                .collect(),
            charges,
            refunded_cents,
        }
    }

    /// The stock reservation made for an order, if any.
    fn reservation_of(&self, order_id: i64) -> Option<&'a Reservation> {
        self.reservations
            .get(order_reference(order_id).as_str())
            .copied()
    }

    /// Every charge made under the order's payments key.
    fn charges_of(&self, order_id: i64) -> &[&'a Charge] {
        self.charges
            .get(order_reference(order_id).as_str())
            .map_or(&[], Vec::as_slice)
    }

    fn refunded(&self, charge: &Charge) -> i64 {
        self.refunded_cents
            .get(charge.id.as_str())
            .copied()
            .unwrap_or(0)
    }
}

/// The reservation id and the payments idempotency key of an order in both builds.
fn order_reference(order_id: i64) -> String {
    format!("order-{order_id}")
}

/// The key the client sent: a compensated saga's order keeps it as
/// `<key>#cancelled#<order id>` so that a retry with the key can run again.
fn client_key(order: &OrderAudit) -> &str {
    let freed_suffix = format!("#cancelled#{}", order.id);
    order
        .idempotency_key
        .strip_suffix(freed_suffix.as_str())
        .filter(|_| order.status == OrderStatus::Cancelled)
        .unwrap_or(&order.idempotency_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::inventory::ReservationState;

    fn order(id: i64, status: OrderStatus, key: &str) -> OrderAudit {
        OrderAudit {
            id,
            user_id: 1,
            status,
            total_cents: 0,
            idempotency_key: key.to_owned(),
            reservation_id: None,
            charge_id: None,
            lines: Vec::new(),
            stock_commit_pending: false,
        }
    }

    /// One confirmed order of 2 units at 500 cents, paid, with its reservation in `state`;
    /// the stock counters agree with that state.
    fn one_paid_order(state: ReservationState, stock_commit_pending: bool) -> Audit {
        use domain::admin::StockAudit;
        use domain::inventory::StockLine;
        use domain::orders::OrderLine;
        let mut order = order(1, OrderStatus::Confirmed, "k");
        order.total_cents = 1_000;
        order.reservation_id = Some("order-1".into());
        order.charge_id = Some("ch-1".into());
        order.lines = vec![OrderLine {
            product_id: 3,
            sku: "sku-3".into(),
            name: "three".into(),
            quantity: 2,
            unit_price_cents: 500,
        }];
        order.stock_commit_pending = stock_commit_pending;
        let (reserved, sold, available) = match state {
            ReservationState::Held => (2, 0, 8),
            ReservationState::Committed => (0, 2, 8),
            ReservationState::Released => (0, 0, 10),
        };
        Audit {
            taken_at_ms: 0,
            stock: vec![StockAudit {
                product_id: 3,
                initial: 10,
                restocked: 0,
                available,
                reserved,
                sold,
            }],
            reservations: vec![Reservation {
                id: "order-1".into(),
                state,
                lines: vec![StockLine {
                    product_id: 3,
                    quantity: 2,
                }],
                expires_at_ms: 30_000,
            }],
            orders: vec![order],
            charges: vec![Charge {
                id: "ch-1".into(),
                idempotency_key: "order-1".into(),
                user_id: 1,
                amount_cents: 1_000,
                created_at_ms: 0,
            }],
            refunds: Vec::new(),
        }
    }

    fn violations(report: &CheckReport, id: &str) -> usize {
        report
            .invariants
            .iter()
            .find(|invariant| invariant.id == id)
            .map(|invariant| invariant.violations)
            .unwrap_or_else(|| panic!("no invariant {id}"))
    }

    #[test]
    fn a_confirmed_order_owing_its_stock_commit_is_complete_with_its_units_held_but_not_quiescent()
    {
        let report = check(&one_paid_order(ReservationState::Held, true), None);
        assert_eq!(violations(&report, "I1"), 0, "{report:?}");
        assert_eq!(violations(&report, "I6"), 0, "{report:?}");
        assert_eq!(violations(&report, "I7"), 0, "{report:?}");
        // Held units after quiescence are still reported: the owed commit had not been made.
        assert_eq!(violations(&report, "I8"), 1, "{report:?}");
        assert!(!report.valid);
        // Committed meanwhile (inventory's snapshot is taken after the orders'): complete.
        let report = check(&one_paid_order(ReservationState::Committed, true), None);
        assert!(report.valid, "{report:?}");
    }

    #[test]
    fn a_confirmed_order_with_a_held_or_released_reservation_is_incomplete_unless_it_owes_the_commit()
     {
        let report = check(&one_paid_order(ReservationState::Held, false), None);
        assert_eq!(violations(&report, "I6"), 1, "{report:?}");
        // The reservation ran out while the commit was owed and the apology has not run: a
        // confirmed order without its stock, whatever it owes.
        let report = check(&one_paid_order(ReservationState::Released, true), None);
        assert_eq!(violations(&report, "I6"), 1, "{report:?}");
    }

    #[test]
    fn a_cancelled_sagas_freed_key_reads_back_as_the_clients_key() {
        let cancelled = order(7, OrderStatus::Cancelled, "abc#cancelled#7");
        assert_eq!(client_key(&cancelled), "abc");
        // Only the order's own id is a freed-key suffix; a client may send any `#`.
        let odd = order(8, OrderStatus::Cancelled, "abc#cancelled#7");
        assert_eq!(client_key(&odd), "abc#cancelled#7");
        let confirmed = order(7, OrderStatus::Confirmed, "abc#cancelled#7");
        assert_eq!(client_key(&confirmed), "abc#cancelled#7");
    }
}

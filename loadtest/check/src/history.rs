//! The invariants that compare what clients were told with what the shop kept: I3 every
//! acknowledged order exists with the same total, I4 no order that no client asked for —
//! and the resolution of maybe-applied checkouts by idempotency key.
//!
//! The history must cover every checkout since the shop was last reset, or I4 reports the
//! orders of the checkouts it misses.

use std::collections::{BTreeSet, HashMap};

use domain::admin::OrderAudit;
use domain::orders::OrderStatus;

use super::{Findings, Index, MaybeApplied, client_key};
use loadtest_results::history::{CHECKOUT, Outcome, RequestRecord};

/// I3: every checkout answered 2xx names an order that exists, is confirmed, carries the
/// key that was sent and has the total the client was told.
pub(super) fn acknowledged_orders_exist(index: &Index, history: &[RequestRecord]) -> Findings {
    let mut findings = Findings::default();
    let confirmed = confirmed_by_key(index);
    for record in checkouts(history).filter(|record| record.outcome == Outcome::Ok) {
        let order = match (record.order_id, record.idempotency_key.as_deref()) {
            (Some(order_id), _) => index.orders.get(&order_id).copied(),
            // An acknowledgement whose body the harness could not read: the key still says
            // which order the client was promised.
            (None, Some(key)) => confirmed
                .get(key)
                .and_then(|orders| orders.first().copied()),
            (None, None) => {
                findings.add(format!(
                    "checkout at t={} ms was answered {} but its record names neither an order nor a key",
                    record.t_ms, record.status
                ));
                continue;
            }
        };
        let told = told(record);
        let Some(order) = order else {
            findings.add(format!("{told}; no such order exists"));
            continue;
        };
        if order.status != OrderStatus::Confirmed {
            findings.add(format!(
                "{told}; order {} is {}",
                order.id,
                order.status.as_str()
            ));
        } else if record.total_cents != Some(order.total_cents) {
            findings.add(format!(
                "{told}; order {} totals {} cents",
                order.id, order.total_cents
            ));
        } else if let Some(key) = &record.idempotency_key
            && key != client_key(order)
        {
            findings.add(format!(
                "{told}; order {} has key {:?}",
                order.id,
                client_key(order)
            ));
        }
    }
    findings
}

/// I4: every order in the audit carries a key some recorded checkout sent; and a confirmed
/// order has at least one checkout with its key that was acknowledged or may have been
/// applied — an order whose every request was refused (4xx) was made behind the client's back.
pub(super) fn no_order_nobody_asked_for(index: &Index, history: &[RequestRecord]) -> Findings {
    let mut findings = Findings::default();
    // Key -> whether some answer left the checkout possibly applied.
    let mut asked: HashMap<&str, bool> = HashMap::new();
    for record in checkouts(history) {
        if let Some(key) = &record.idempotency_key {
            *asked.entry(key).or_default() |= record.outcome != Outcome::Fail;
        }
    }
    for order in &index.audit.orders {
        let key = client_key(order);
        match asked.get(key) {
            None => findings.add(format!(
                "order {} ({}, user {}, {} cents) has key {key:?}, which no recorded checkout sent",
                order.id,
                order.status.as_str(),
                order.user_id,
                order.total_cents
            )),
            Some(false) if order.status == OrderStatus::Confirmed => findings.add(format!(
                "order {} is confirmed, but every checkout with key {key:?} was refused",
                order.id
            )),
            Some(_) => {}
        }
    }
    findings
}

/// Resolves every maybe-applied checkout by its key: applied when the key ended in a
/// confirmed order, not applied otherwise. Neither is a failure; whatever was kept or given
/// back is then held to I5–I9 like any other checkout.
pub(super) fn resolve_maybe_applied(index: &Index, history: &[RequestRecord]) -> MaybeApplied {
    let confirmed = confirmed_by_key(index);
    let keys: BTreeSet<&str> = checkouts(history)
        .filter(|record| record.outcome == Outcome::MaybeApplied)
        .filter_map(|record| record.idempotency_key.as_deref())
        .collect();
    let applied = keys
        .iter()
        .filter(|key| confirmed.contains_key(*key))
        .count();
    MaybeApplied {
        keys: keys.len(),
        applied,
        not_applied: keys.len() - applied,
    }
}

/// What the client was told, in words.
fn told(record: &RequestRecord) -> String {
    let mut told = format!("checkout at t={} ms", record.t_ms);
    if let Some(key) = &record.idempotency_key {
        told.push_str(&format!(" with key {key:?}"));
    }
    told.push_str(&format!(" was answered {}", record.status));
    if let Some(order_id) = record.order_id {
        told.push_str(&format!(" naming order {order_id}"));
    }
    match record.total_cents {
        Some(total_cents) => told.push_str(&format!(" of {total_cents} cents")),
        None => told.push_str(" with no total recorded"),
    }
    told
}

fn checkouts(history: &[RequestRecord]) -> impl Iterator<Item = &RequestRecord> {
    history
        .iter()
        .filter(|record| record.transaction == CHECKOUT)
}

/// Confirmed orders by the key their client sent. The history names users by email and the
/// audit by id, so keys are matched without the user; the harness makes every key unique.
fn confirmed_by_key<'a>(index: &Index<'a>) -> HashMap<&'a str, Vec<&'a OrderAudit>> {
    let mut confirmed: HashMap<&str, Vec<&OrderAudit>> = HashMap::new();
    for order in &index.audit.orders {
        if order.status == OrderStatus::Confirmed {
            confirmed.entry(client_key(order)).or_default().push(order);
        }
    }
    confirmed
}

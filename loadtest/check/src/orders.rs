//! The invariants that link orders, reservations and charges: I5 one of each per
//! idempotency key, I6 every confirmed order complete, I7 money conserved, I9 every
//! committed reservation owned by exactly one confirmed order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use domain::admin::OrderAudit;
use domain::catalog::ProductId;
use domain::inventory::ReservationState;
use domain::orders::OrderStatus;

use super::stock::describe_lines;
use super::{Findings, Index, client_key, order_reference};

/// I5: per idempotency key (per user, as the shop scopes keys) at most one order that is
/// not cancelled, one reservation that is not released and one charge that is not fully
/// refunded. Counting only what is still in force is deliberate: a saga that compensated
/// leaves a cancelled order, a released reservation and a refunded charge behind, and a
/// retry with the same key then legitimately makes a second, live set — the monolith's
/// rollback leaves nothing, and the two must be judged alike.
pub(super) fn one_of_each_per_key(index: &Index) -> Findings {
    let mut findings = Findings::default();
    let mut by_key: BTreeMap<(i64, &str), Vec<&OrderAudit>> = BTreeMap::new();
    for order in &index.audit.orders {
        by_key
            .entry((order.user_id, client_key(order)))
            .or_default()
            .push(order);
    }
    for ((user_id, key), orders) in by_key {
        let live_orders: Vec<String> = orders
            .iter()
            .filter(|order| order.status != OrderStatus::Cancelled)
            .map(|order| order.id.to_string())
            .collect();
        let live_reservations: Vec<&str> = orders
            .iter()
            .filter_map(|order| index.reservation_of(order.id))
            .filter(|reservation| reservation.state != ReservationState::Released)
            .map(|reservation| reservation.id.as_str())
            .collect();
        let live_charges: Vec<&str> = orders
            .iter()
            .flat_map(|order| index.charges_of(order.id))
            .filter(|charge| index.refunded(charge) < charge.amount_cents)
            .map(|charge| charge.id.as_str())
            .collect();
        if live_orders.len() > 1 || live_reservations.len() > 1 || live_charges.len() > 1 {
            findings.add(format!(
                "key {key:?} of user {user_id}: orders not cancelled [{}], reservations not released [{}], charges not refunded [{}]",
                live_orders.join(", "),
                live_reservations.join(", "),
                live_charges.join(", ")
            ));
        }
    }
    findings
}

/// I6: a confirmed order has its reservation `order-<id>` committed with the order's
/// quantities, and exactly one charge under `order-<id>`, recorded on the order, of the
/// order's total (the sum of its lines), not refunded. A confirmed order whose stock commit
/// the saga still owes (`stock_commit_pending`) has its reservation held instead — its units
/// are reserved until the commit, sold after, and I1 counts them so — or already committed
/// (the commit landed between the orders' and inventory's snapshots); never released, which
/// is a confirmed order without its stock. I8 still reports the held one: the shop was
/// audited before the commit was made.
pub(super) fn confirmed_orders_complete(index: &Index) -> Findings {
    let mut findings = Findings::default();
    for order in &index.audit.orders {
        if order.status != OrderStatus::Confirmed {
            continue;
        }
        if let Some(problem) = incomplete(index, order) {
            findings.add(format!("confirmed order {}: {problem}", order.id));
        }
    }
    findings
}

/// I7: what was charged minus what was refunded equals the confirmed orders' totals. It is
/// checked per order (a charge's net amount against its order's total, 0 for an order that
/// is not confirmed or a charge that belongs to no order), which implies the sum and says
/// where the money went; the example carries the sums.
pub(super) fn money_conserved(index: &Index) -> Findings {
    let mut findings = Findings::default();
    let mut net_by_key: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for charge in &index.audit.charges {
        let (charged, refunded) = net_by_key.entry(&charge.idempotency_key).or_default();
        *charged += charge.amount_cents;
        *refunded += index.refunded(charge);
    }
    let mut expected_by_key: BTreeMap<String, (i64, &OrderAudit)> = BTreeMap::new();
    for order in &index.audit.orders {
        let expected = match order.status {
            OrderStatus::Confirmed => order.total_cents,
            OrderStatus::Pending | OrderStatus::Cancelled => 0,
        };
        expected_by_key.insert(order_reference(order.id), (expected, order));
    }
    for (key, (charged, refunded)) in &net_by_key {
        let net = charged - refunded;
        match expected_by_key.get(*key) {
            Some((expected, order)) if net != *expected => findings.add(format!(
                "order {} ({}): charged {charged} - refunded {refunded} = {net} cents, expected {expected}",
                order.id,
                order.status.as_str()
            )),
            Some(_) => {}
            None if net != 0 => findings.add(format!(
                "payments key {key}: charged {charged} - refunded {refunded} = {net} cents for no order"
            )),
            None => {}
        }
    }
    for (key, (expected, order)) in &expected_by_key {
        if *expected != 0 && !net_by_key.contains_key(key.as_str()) {
            findings.add(format!(
                "order {} (confirmed): {expected} cents expected, nothing charged",
                order.id
            ));
        }
    }
    let charge_ids: HashSet<&str> = index
        .audit
        .charges
        .iter()
        .map(|charge| charge.id.as_str())
        .collect();
    for refund in &index.audit.refunds {
        if !charge_ids.contains(refund.charge_id.as_str()) {
            findings.add(format!(
                "refund {} of {} cents refers to no charge ({})",
                refund.id, refund.amount_cents, refund.charge_id
            ));
        }
    }
    if let Some(example) = findings.first_example.as_mut() {
        let charged: i64 = index
            .audit
            .charges
            .iter()
            .map(|charge| charge.amount_cents)
            .sum();
        let refunded: i64 = index
            .audit
            .refunds
            .iter()
            .map(|refund| refund.amount_cents)
            .sum();
        let confirmed: i64 = index
            .audit
            .orders
            .iter()
            .filter(|order| order.status == OrderStatus::Confirmed)
            .map(|order| order.total_cents)
            .sum();
        example.push_str(&format!(
            "; overall charges {charged} - refunds {refunded} = {} cents vs confirmed totals {confirmed} cents",
            charged - refunded
        ));
    }
    findings
}

/// I9: every committed reservation belongs to exactly one confirmed order — I6 read the
/// other way. I6 starts from the confirmed orders (each has its reservation, committed);
/// this starts from the committed reservations, the stock that was sold. An order claims a
/// reservation by the name both builds give it (`order-<id>`) and by the reservation id it
/// records. A committed reservation that no confirmed order claims is stock sold for no
/// order: I1 and I2 only see that the counters agree with the reservations, so units
/// committed behind the shop's back pass them. One claimed by two confirmed orders sold the
/// same units twice. Like I8 it judges a shop at quiescence, when no saga is between
/// committing its reservation and confirming its order.
pub(super) fn committed_reservations_owned_once(index: &Index) -> Findings {
    let mut findings = Findings::default();
    let mut claimants: HashMap<String, Vec<&OrderAudit>> = HashMap::new();
    for order in &index.audit.orders {
        let mut claimed = BTreeSet::from([order_reference(order.id)]);
        claimed.extend(order.reservation_id.iter().cloned());
        for reservation_id in claimed {
            claimants.entry(reservation_id).or_default().push(order);
        }
    }
    for reservation in &index.audit.reservations {
        if reservation.state != ReservationState::Committed {
            continue;
        }
        let orders = claimants
            .get(reservation.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let confirmed: Vec<String> = orders
            .iter()
            .filter(|order| order.status == OrderStatus::Confirmed)
            .map(|order| order.id.to_string())
            .collect();
        let sold = format!(
            "committed reservation {} ({})",
            reservation.id,
            describe_lines(&reservation.lines)
        );
        match confirmed.as_slice() {
            [_] => {}
            [] if orders.is_empty() => {
                findings.add(format!(
                    "{sold} belongs to no order: stock sold for no order"
                ));
            }
            [] => {
                let others: Vec<String> = orders
                    .iter()
                    .map(|order| format!("order {} ({})", order.id, order.status.as_str()))
                    .collect();
                findings.add(format!(
                    "{sold} belongs to no confirmed order, only to {}",
                    others.join(", ")
                ));
            }
            several => findings.add(format!(
                "{sold} is claimed by {} confirmed orders: {}",
                several.len(),
                several.join(", ")
            )),
        }
    }
    findings
}

/// The first thing missing from a confirmed order, if any.
fn incomplete(index: &Index, order: &OrderAudit) -> Option<String> {
    let reference = order_reference(order.id);
    let lines_total: i64 = order
        .lines
        .iter()
        .map(|line| line.quantity * line.unit_price_cents)
        .sum();
    if lines_total != order.total_cents {
        return Some(format!(
            "total {} cents is not the sum of its lines ({lines_total} cents)",
            order.total_cents
        ));
    }
    if let Some(recorded) = &order.reservation_id
        && *recorded != reference
    {
        return Some(format!("records reservation {recorded}, not {reference}"));
    }
    let Some(reservation) = index.reservation_of(order.id) else {
        return Some(format!("no reservation {reference}"));
    };
    let stock_accounted = match reservation.state {
        ReservationState::Committed => true,
        ReservationState::Held => order.stock_commit_pending,
        ReservationState::Released => false,
    };
    if !stock_accounted {
        let owed = if order.stock_commit_pending {
            " (its stock commit was still owed)"
        } else {
            ""
        };
        return Some(format!(
            "reservation {reference} is {}, not committed{owed}",
            reservation.state.as_str()
        ));
    }
    let ordered = quantities(
        order
            .lines
            .iter()
            .map(|line| (line.product_id, line.quantity)),
    );
    let reserved = quantities(
        reservation
            .lines
            .iter()
            .map(|line| (line.product_id, line.quantity)),
    );
    if ordered != reserved {
        return Some(format!(
            "reservation {reference} holds {reserved:?} (product: units), the order {ordered:?}"
        ));
    }
    let charge = match index.charges_of(order.id) {
        [charge] => charge,
        [] => return Some(format!("no charge under payments key {reference}")),
        charges => {
            return Some(format!(
                "{} charges under payments key {reference}",
                charges.len()
            ));
        }
    };
    if charge.amount_cents != order.total_cents {
        return Some(format!(
            "charge {} is {} cents, the order's total {} cents",
            charge.id, charge.amount_cents, order.total_cents
        ));
    }
    if order.charge_id.as_deref() != Some(charge.id.as_str()) {
        return Some(format!(
            "records charge {:?}, but the charge under {reference} is {}",
            order.charge_id, charge.id
        ));
    }
    let refunded = index.refunded(charge);
    if refunded != 0 {
        return Some(format!(
            "its charge {} was refunded {refunded} cents",
            charge.id
        ));
    }
    None
}

fn quantities(lines: impl Iterator<Item = (ProductId, i64)>) -> BTreeMap<ProductId, i64> {
    let mut units = BTreeMap::new();
    for (product_id, quantity) in lines {
        *units.entry(product_id).or_default() += quantity;
    }
    units
}

//! The inventory invariants: I1 stock conserved per product, I2 no oversell, I8 no
//! reservation left held after quiescence.

use std::collections::{BTreeMap, BTreeSet};

use domain::catalog::ProductId;
use domain::inventory::{Reservation, ReservationState, StockLine};

use super::{Findings, Index};

/// I1: `initial + restocked = available + reserved + sold` for every product, and the
/// `reserved` and `sold` counters agree with the reservations behind them (held and
/// committed lines). The counters alone could balance while a reservation's units vanished
/// from both sides; the ledger check catches that.
pub(super) fn stock_conserved(index: &Index) -> Findings {
    let mut findings = Findings::default();
    let held = units_by_product(&index.audit.reservations, ReservationState::Held);
    let committed = units_by_product(&index.audit.reservations, ReservationState::Committed);
    for stock in &index.audit.stock {
        let product = stock.product_id;
        let supplied = stock.initial + stock.restocked;
        let accounted = stock.available + stock.reserved + stock.sold;
        let held_units = held.get(&product).copied().unwrap_or(0);
        let committed_units = committed.get(&product).copied().unwrap_or(0);
        if supplied != accounted {
            findings.add(format!(
                "product {product}: initial {} + restocked {} = {supplied}, but available {} + reserved {} + sold {} = {accounted}",
                stock.initial, stock.restocked, stock.available, stock.reserved, stock.sold
            ));
        } else if stock.reserved != held_units {
            findings.add(format!(
                "product {product}: reserved counter is {}, but held reservations hold {held_units} units",
                stock.reserved
            ));
        } else if stock.sold != committed_units {
            findings.add(format!(
                "product {product}: sold counter is {}, but committed reservations hold {committed_units} units",
                stock.sold
            ));
        }
    }
    let stocked: BTreeSet<ProductId> = index
        .audit
        .stock
        .iter()
        .map(|stock| stock.product_id)
        .collect();
    let reserved_products: BTreeSet<ProductId> =
        held.keys().chain(committed.keys()).copied().collect();
    for product in reserved_products.difference(&stocked) {
        findings.add(format!(
            "reservations hold units of product {product}, which has no stock record"
        ));
    }
    findings
}

/// I2: no counter below zero, and never more units sold — by the counter or by committed
/// reservations — than were ever supplied.
pub(super) fn no_oversell(index: &Index) -> Findings {
    let mut findings = Findings::default();
    let committed = units_by_product(&index.audit.reservations, ReservationState::Committed);
    for stock in &index.audit.stock {
        let product = stock.product_id;
        let supplied = stock.initial + stock.restocked;
        let committed_units = committed.get(&product).copied().unwrap_or(0);
        if stock.available < 0 || stock.reserved < 0 || stock.sold < 0 {
            findings.add(format!(
                "product {product}: available {}, reserved {}, sold {} (a counter below zero)",
                stock.available, stock.reserved, stock.sold
            ));
        } else if stock.sold > supplied || committed_units > supplied {
            findings.add(format!(
                "product {product}: {} units sold ({committed_units} in committed reservations) of {supplied} supplied",
                stock.sold
            ));
        }
    }
    findings
}

/// I8: after quiescence every reservation is committed or released. One still held means a
/// checkout neither finished nor gave its stock back (and inventory's TTL sweeper has not
/// either) — or, said so in the finding, that a confirmed order still owes its stock commit:
/// the snapshot was taken before the shop was quiescent.
pub(super) fn nothing_left_held(index: &Index) -> Findings {
    let mut findings = Findings::default();
    let taken_at_ms = index.audit.taken_at_ms;
    for reservation in &index.audit.reservations {
        if reservation.state != ReservationState::Held {
            continue;
        }
        let expiry = match reservation.expires_at_ms - taken_at_ms {
            left if left >= 0 => format!("expires {left} ms after the snapshot"),
            left => format!("expired {} ms before the snapshot", -left),
        };
        // The order that names the reservation, not one parsed out of its id's spelling.
        let owed_by = index
            .audit
            .orders
            .iter()
            .find(|order| order.reservation_id.as_deref() == Some(reservation.id.as_str()))
            .filter(|order| order.stock_commit_pending)
            .map(|order| format!("; confirmed order {} still owes its commit", order.id))
            .unwrap_or_default();
        findings.add(format!(
            "reservation {} still holds {} ({expiry}{owed_by})",
            reservation.id,
            describe_lines(&reservation.lines)
        ));
    }
    findings
}

/// Units per product over the reservations in `state`.
fn units_by_product(
    reservations: &[Reservation],
    state: ReservationState,
) -> BTreeMap<ProductId, i64> {
    let mut units = BTreeMap::new();
    for reservation in reservations
        .iter()
        .filter(|reservation| reservation.state == state)
    {
        for line in &reservation.lines {
            *units.entry(line.product_id).or_default() += line.quantity;
        }
    }
    units
}

/// `2 x product 1, 1 x product 3`.
pub(super) fn describe_lines(lines: &[StockLine]) -> String {
    let described: Vec<String> = lines
        .iter()
        .map(|line| format!("{} x product {}", line.quantity, line.product_id))
        .collect();
    described.join(", ")
}

//! The stock commit past the pivot is owed, not waited for: when inventory does not answer
//! it, the paying customer gets the confirmed order at once and the recovery loop commits the
//! stock when inventory answers again — or, when the reservation ran out first, refunds and
//! cancels the order (the apology).

use anyhow::Result;
use domain::Context;
use domain::DomainError;
use domain::inventory::ReservationState;
use domain::orders::OrderStatus;
use serde_json::json;

use crate::partial_fault::sum_of;
use crate::support::{Audits, Backend, Shop};

/// Hops that wait longer than the second a charge takes below (the tests' default is half
/// a second), so the charge succeeds.
fn slow_payments_in_time(settings: &mut api::Settings) {
    settings.hop_timeout_ms = 2_000;
}

/// Starts a checkout whose charge takes a second, and makes every inventory call fail once
/// the stock is reserved: the charge succeeds, the commit after it cannot.
async fn checkout_with_inventory_failing_after_the_charge(
    shop: &Shop,
    key: &'static str,
) -> Result<tokio::task::JoinHandle<domain::DomainResult<domain::orders::CheckoutOutcome>>> {
    shop.fill_cart(1, &[(3, 2)]).await?;
    shop.fault(
        &shop.payments,
        Context::Payments,
        "latency",
        json!({ "ms": 1_000 }),
    )
    .await?;
    let orders = shop.orders();
    let checkout = tokio::spawn(async move {
        domain::orders::Orders::checkout(&orders, 1, key, &Default::default()).await
    });
    shop.wait_until("the stock is reserved", |audits| {
        audits.held_reservations() == 1
    })
    .await?;
    shop.fault(
        &shop.inventory,
        Context::Inventory,
        "errors",
        json!({ "rate": 1.0 }),
    )
    .await?;
    Ok(checkout)
}

pub async fn inventory_failing_after_the_charge_still_confirms_and_the_stock_is_committed_once_it_heals()
-> Result<()> {
    let shop = Shop::start_with(Backend::Sqlite, slow_payments_in_time).await?;
    let checkout = checkout_with_inventory_failing_after_the_charge(&shop, "owed").await?;
    // Confirmed although inventory refused the commit: one inventory call in the path.
    let confirmed = checkout.await??;
    assert_eq!(confirmed.order.status, OrderStatus::Confirmed);
    assert!(!confirmed.replayed);

    let audits = shop
        .wait_until("the charge is made", |audits| {
            audits.payments.charges.len() == 1
        })
        .await?;
    // Still owed while inventory fails: the units stay reserved for the order, not sold.
    assert_eq!(audits.owed_stock_commits(), 1, "{audits:#?}");
    assert_eq!(audits.held_reservations(), 1, "{audits:#?}");
    let metrics = shop.metrics(&shop.orders).await?;
    assert_eq!(
        sum_of(&metrics, "checkout_stock_commits_owed_total", ""),
        1.0
    );
    // A replay of a confirmed order that owes its commit answers it confirmed.
    let replay = shop.checkout(1, "owed").await?;
    assert!(replay.replayed);
    assert_eq!(replay.order.id, confirmed.order.id);
    assert_eq!(replay.order.status, OrderStatus::Confirmed);

    shop.heal(&shop.inventory).await?;
    shop.heal(&shop.payments).await?;
    let audits = shop
        .wait_until("the owed commit is made and the books balance", |audits| {
            audits.consistent()
        })
        .await?;
    assert_eq!(
        audits.inventory.reservations[0].state,
        ReservationState::Committed
    );
    assert_eq!(audits.orders.orders[0].status, OrderStatus::Confirmed);
    assert!(audits.payments.refunds.is_empty());
    assert_eq!(audits.confirmed_cents(), confirmed.order.total_cents);
    assert!(!audits.orders.orders[0].stock_commit_pending);
    let stock = product_stock(&audits, 3);
    assert_eq!((stock.reserved, stock.sold), (0, 2), "{stock:?}");
    shop.stop().await;
    Ok(())
}

pub async fn a_reservation_that_runs_out_before_the_owed_commit_refunds_and_cancels_the_confirmed_order()
-> Result<()> {
    // A reservation TTL of a second: inventory stays unreachable for longer than that below.
    let shop = Shop::start_with(Backend::Sqlite, |settings| {
        slow_payments_in_time(settings);
        settings.reservation_ttl_ms = 1_000;
    })
    .await?;
    let checkout = checkout_with_inventory_failing_after_the_charge(&shop, "apology").await?;
    let confirmed = checkout.await??;
    assert_eq!(confirmed.order.status, OrderStatus::Confirmed);

    // Inventory's sweeper gives the units back (it is not behind the fault) while the
    // commit is still owed.
    shop.wait_until("the reservation ran out", |audits| {
        audits
            .inventory
            .reservations
            .iter()
            .any(|reservation| reservation.state == ReservationState::Released)
    })
    .await?;
    shop.heal(&shop.inventory).await?;
    shop.heal(&shop.payments).await?;
    let audits = shop
        .wait_until("the order is refunded and cancelled", |audits| {
            audits.consistent() && audits.orders.orders[0].status == OrderStatus::Cancelled
        })
        .await?;
    assert_eq!(audits.payments.charges.len(), 1);
    assert_eq!(audits.payments.refunds.len(), 1);
    assert_eq!(audits.money_kept_cents(), 0);
    assert_eq!(
        audits.inventory.reservations[0].state,
        ReservationState::Released
    );
    let stock = product_stock(&audits, 3);
    assert_eq!(
        (stock.available, stock.reserved, stock.sold),
        (stock.initial, 0, 0),
        "{stock:?}"
    );
    let metrics = shop.metrics(&shop.orders).await?;
    assert_eq!(sum_of(&metrics, "checkout_apologies_total", ""), 1.0);
    // The key stays with the cancelled order: a replay learns what became of it rather than
    // buying again.
    let replay = shop.checkout(1, "apology").await;
    assert!(
        matches!(&replay, Err(DomainError::Conflict(message)) if message.contains("refunded")),
        "{replay:?}"
    );
    shop.stop().await;
    Ok(())
}

fn product_stock(audits: &Audits, product_id: i64) -> domain::admin::StockAudit {
    audits
        .inventory
        .stock
        .iter()
        .find(|stock| stock.product_id == product_id)
        .cloned()
        .expect("the product has stock")
}

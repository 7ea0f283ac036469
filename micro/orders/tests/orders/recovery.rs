use std::time::Duration;

use anyhow::Result;
use domain::inventory::ReservationState;
use domain::orders::OrderStatus;
use domain::{Context, DomainError};
use serde_json::json;

use crate::support::{Backend, Shop};

/// One slow hop and no retries: a charge stays in flight for two seconds, long enough to kill
/// orders in the middle of it (the saga is then taken over after three seconds of silence).
fn slow_hops(settings: &mut api::Settings) {
    settings.hop_timeout_ms = 2_000;
    settings.hop_retries = 0;
}

pub async fn a_checkout_killed_while_payments_hangs_is_compensated_by_the_next_orders(
    backend: Backend,
) -> Result<()> {
    let mut shop = Shop::start_with(backend, slow_hops).await?;
    shop.fill_cart(1, &[(1, 2)]).await?;
    shop.fault(&shop.payments, Context::Payments, "hang", json!({}))
        .await?;
    let orders = shop.orders();
    let checkout = tokio::spawn(async move {
        domain::orders::Orders::checkout(&orders, 1, "crash", &Default::default()).await
    });
    shop.wait_until("the stock is reserved", |audits| {
        audits.held_reservations() == 1
    })
    .await?;
    shop.kill_orders();
    let error = checkout.await?.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");

    shop.heal(&shop.payments).await?;
    shop.restart_orders().await?;
    let audits = shop
        .wait_until("the saga is cancelled", |audits| {
            audits.consistent() && !audits.orders.orders.is_empty()
        })
        .await?;
    let order = &audits.orders.orders[0];
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.idempotency_key,
        format!("crash#cancelled#{}", order.id)
    );
    assert_eq!(
        audits.inventory.reservations[0].state,
        ReservationState::Released
    );
    assert_eq!(audits.money_kept_cents(), 0);

    let outcome = shop.checkout(1, "crash").await?;
    assert_eq!(outcome.order.status, OrderStatus::Confirmed);
    shop.wait_until("consistent", |audits| audits.consistent())
        .await?;
    shop.stop().await;
    Ok(())
}

pub async fn a_checkout_killed_while_payments_hangs_is_compensated_by_the_next_orders_process()
-> Result<()> {
    a_checkout_killed_while_payments_hangs_is_compensated_by_the_next_orders(Backend::Sqlite).await
}

pub async fn a_checkout_killed_after_the_charge_is_confirmed_by_the_next_orders_process()
-> Result<()> {
    let mut shop = Shop::start_with(Backend::Sqlite, slow_hops).await?;
    shop.fill_cart(1, &[(3, 1)]).await?;
    // The charge takes a second: time to make inventory hang before the commit.
    shop.fault(
        &shop.payments,
        Context::Payments,
        "latency",
        json!({ "ms": 1_000 }),
    )
    .await?;
    let orders = shop.orders();
    let checkout = tokio::spawn(async move {
        domain::orders::Orders::checkout(&orders, 1, "paid", &Default::default()).await
    });
    shop.wait_until("the stock is reserved", |audits| {
        audits.held_reservations() == 1
    })
    .await?;
    shop.fault(&shop.inventory, Context::Inventory, "hang", json!({}))
        .await?;
    shop.wait_until("the charge is made", |audits| {
        audits.payments.charges.len() == 1
    })
    .await?;
    // The commit now hangs; give the saga a moment to record the charge, then kill it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    shop.kill_orders();
    assert!(checkout.await?.is_err());

    shop.heal(&shop.inventory).await?;
    shop.heal(&shop.payments).await?;
    shop.restart_orders().await?;
    let audits = shop
        .wait_until("the saga is confirmed", |audits| {
            audits.consistent() && !audits.orders.orders.is_empty()
        })
        .await?;
    let order = &audits.orders.orders[0];
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(
        audits.inventory.reservations[0].state,
        ReservationState::Committed
    );
    assert_eq!(audits.payments.charges.len(), 1);
    assert!(audits.payments.refunds.is_empty());
    assert_eq!(audits.payments.charges[0].amount_cents, order.total_cents);
    let replay = shop.checkout(1, "paid").await?;
    assert!(replay.replayed);
    assert_eq!(replay.order.id, order.id);
    shop.stop().await;
    Ok(())
}

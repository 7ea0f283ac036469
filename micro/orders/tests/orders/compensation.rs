use anyhow::Result;
use domain::inventory::ReservationState;
use domain::orders::OrderStatus;
use domain::{Context, DomainError};
use serde_json::json;

use crate::support::{Backend, Shop};

/// Payments refuses every call: the client hears 503 at once and the stock is given back at
/// once. Whether a charge happened cannot be known while payments does not answer, so the
/// key stays taken until the saga can settle it (charge the key again, refund it).
pub async fn payments_failing_answers_503_and_gives_everything_back(
    backend: Backend,
) -> Result<()> {
    let shop = Shop::start(backend).await?;
    shop.fault(
        &shop.payments,
        Context::Payments,
        "errors",
        json!({ "rate": 1.0 }),
    )
    .await?;
    shop.fill_cart(1, &[(1, 1)]).await?;
    let error = shop.checkout(1, "unpaid").await.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");

    let audits = shop.audit(&shop.inventory).await?;
    assert_eq!(audits.reservations.len(), 1);
    assert_eq!(audits.reservations[0].state, ReservationState::Released);
    assert!(shop.audit(&shop.payments).await?.charges.is_empty());
    let retried = shop.checkout(1, "unpaid").await.unwrap_err();
    assert!(
        matches!(retried, DomainError::Unavailable(_)),
        "{retried:?}"
    );

    shop.heal(&shop.payments).await?;
    let audits = shop
        .wait_until("the saga is cancelled", |audits| audits.consistent())
        .await?;
    assert_eq!(audits.orders.orders[0].status, OrderStatus::Cancelled);
    assert_eq!(audits.money_kept_cents(), 0);
    assert!(
        audits
            .inventory
            .stock
            .iter()
            .all(|stock| stock.reserved == 0 && stock.sold == 0)
    );

    let outcome = shop.checkout(1, "unpaid").await?;
    assert_eq!(outcome.order.status, OrderStatus::Confirmed);
    shop.wait_until("consistent", |audits| audits.consistent())
        .await?;
    shop.stop().await;
    Ok(())
}

pub async fn payments_failing_answers_503_releases_the_reservation_and_cancels_without_keeping_money()
-> Result<()> {
    payments_failing_answers_503_and_gives_everything_back(Backend::Sqlite).await
}

pub async fn inventory_failing_answers_503_charges_nothing_and_frees_the_key_once_healed()
-> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    shop.fill_cart(1, &[(2, 1)]).await?;
    shop.fault(
        &shop.inventory,
        Context::Inventory,
        "errors",
        json!({ "rate": 1.0 }),
    )
    .await?;
    let error = shop.checkout(1, "unstocked").await.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");
    assert!(shop.audit(&shop.payments).await?.charges.is_empty());

    shop.heal(&shop.inventory).await?;
    let audits = shop
        .wait_until("the saga is cancelled", |audits| audits.consistent())
        .await?;
    assert_eq!(audits.orders.orders[0].status, OrderStatus::Cancelled);
    assert!(audits.payments.charges.is_empty());

    let outcome = shop.checkout(1, "unstocked").await?;
    assert_eq!(outcome.order.status, OrderStatus::Confirmed);
    shop.stop().await;
    Ok(())
}

pub async fn inventory_down_answers_503_and_charges_nothing() -> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    shop.fill_cart(1, &[(2, 1)]).await?;
    // A service that is down answers nothing at all: the saga cannot even release.
    shop.fault(&shop.inventory, Context::Inventory, "hang", json!({}))
        .await?;
    let error = shop.checkout(1, "down").await.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");
    let payments = shop.audit(&shop.payments).await?;
    assert!(payments.charges.is_empty());
    shop.heal(&shop.inventory).await?;
    let audits = shop
        .wait_until("the saga is cancelled", |audits| audits.consistent())
        .await?;
    assert!(audits.payments.charges.is_empty());
    assert_eq!(audits.orders.orders[0].status, OrderStatus::Cancelled);
    shop.stop().await;
    Ok(())
}

use anyhow::Result;
use domain::DomainError;
use domain::inventory::ReservationState;
use domain::orders::{CheckoutRequest, OrderStatus, Orders};

use crate::support::{Backend, Shop};

pub async fn a_checkout_confirms_commits_charges_the_total_and_empties_the_cart(
    backend: Backend,
) -> Result<()> {
    let shop = Shop::start(backend).await?;
    shop.fill_cart(1, &[(1, 2), (2, 1)]).await?;
    let outcome = shop.checkout(1, "happy").await?;
    assert!(!outcome.replayed);
    assert_eq!(outcome.order.status, OrderStatus::Confirmed);
    assert_eq!(outcome.order.lines.len(), 2);
    let line_total: i64 = outcome
        .order
        .lines
        .iter()
        .map(|line| line.quantity * line.unit_price_cents)
        .sum();
    assert_eq!(outcome.order.total_cents, line_total);

    let audits = shop
        .wait_until("consistent", |audits| audits.consistent())
        .await?;
    let reservation_id = format!("order-{}", outcome.order.id);
    let reservation = audits
        .inventory
        .reservations
        .iter()
        .find(|reservation| reservation.id == reservation_id)
        .expect("the order's reservation");
    assert_eq!(reservation.state, ReservationState::Committed);
    assert_eq!(audits.payments.charges.len(), 1);
    assert_eq!(
        audits.payments.charges[0].amount_cents,
        outcome.order.total_cents
    );
    assert!(audits.payments.refunds.is_empty());
    let order = &audits.orders.orders[0];
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(
        order.reservation_id.as_deref(),
        Some(reservation_id.as_str())
    );
    assert_eq!(
        order.charge_id.as_deref(),
        Some(audits.payments.charges[0].id.as_str())
    );
    assert!(domain::cart::Cart::lines(&shop.cart(), 1).await?.is_empty());
    assert_eq!(shop.orders().get(1, outcome.order.id).await?, outcome.order);
    shop.stop().await;
    Ok(())
}

pub async fn a_checkout_confirms_the_order_commits_the_reservation_charges_the_total_and_empties_the_cart()
-> Result<()> {
    a_checkout_confirms_commits_charges_the_total_and_empties_the_cart(Backend::Sqlite).await
}

pub async fn a_replay_with_the_same_key_returns_the_same_order_marked_replayed() -> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    shop.fill_cart(1, &[(3, 1)]).await?;
    let first = shop.checkout(1, "again").await?;
    let second = shop.checkout(1, "again").await?;
    assert!(second.replayed);
    assert_eq!(second.order, first.order);
    let audits = shop
        .wait_until("consistent", |audits| audits.consistent())
        .await?;
    assert_eq!(audits.orders.orders.len(), 1);
    assert_eq!(audits.payments.charges.len(), 1);
    shop.stop().await;
    Ok(())
}

pub async fn the_same_key_with_a_different_request_is_invalid() -> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    shop.fill_cart(1, &[(3, 1)]).await?;
    shop.checkout(1, "reused").await?;
    let noted = CheckoutRequest {
        note: Some("gift".into()),
    };
    let error = shop
        .orders()
        .checkout(1, "reused", &noted)
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Invalid(_)), "{error:?}");
    shop.stop().await;
    Ok(())
}

pub async fn an_empty_cart_is_invalid_and_a_retry_with_the_same_key_after_filling_it_succeeds()
-> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    let error = shop.checkout(2, "early").await.unwrap_err();
    assert!(matches!(error, DomainError::Invalid(_)), "{error:?}");
    shop.fill_cart(2, &[(4, 1)]).await?;
    let outcome = shop.checkout(2, "early").await?;
    assert!(!outcome.replayed);
    assert_eq!(outcome.order.status, OrderStatus::Confirmed);
    let audits = shop
        .wait_until("consistent", |audits| audits.consistent())
        .await?;
    let statuses: Vec<OrderStatus> = audits
        .orders
        .orders
        .iter()
        .map(|order| order.status)
        .collect();
    assert_eq!(statuses, [OrderStatus::Cancelled, OrderStatus::Confirmed]);
    shop.stop().await;
    Ok(())
}

pub async fn checkout_without_enough_stock_is_a_conflict_holds_nothing_and_frees_the_key()
-> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    // Seeded stock is 3 per product.
    shop.fill_cart(1, &[(5, 1), (6, 4)]).await?;
    let error = shop.checkout(1, "greedy").await.unwrap_err();
    assert!(matches!(error, DomainError::Conflict(_)), "{error:?}");
    let audits = shop
        .wait_until("consistent", |audits| audits.consistent())
        .await?;
    assert!(audits.payments.charges.is_empty());
    assert!(
        audits
            .inventory
            .stock
            .iter()
            .all(|stock| stock.reserved == 0 && stock.sold == 0)
    );
    let cancelled = &audits.orders.orders[0];
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.idempotency_key,
        format!("greedy#cancelled#{}", cancelled.id)
    );

    shop.fill_cart(1, &[(6, 3)]).await?;
    let outcome = shop.checkout(1, "greedy").await?;
    assert_eq!(outcome.order.status, OrderStatus::Confirmed);
    shop.stop().await;
    Ok(())
}

pub async fn list_and_get_show_only_the_users_own_orders() -> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    shop.fill_cart(1, &[(7, 1)]).await?;
    let first = shop.checkout(1, "one").await?.order;
    shop.fill_cart(1, &[(8, 1)]).await?;
    let second = shop.checkout(1, "two").await?.order;
    let listed = shop.orders().list(1).await?;
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert!(shop.orders().list(2).await?.is_empty());
    let error = shop.orders().get(2, first.id).await.unwrap_err();
    assert!(matches!(error, DomainError::NotFound(_)), "{error:?}");
    shop.stop().await;
    Ok(())
}

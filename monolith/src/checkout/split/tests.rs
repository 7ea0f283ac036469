//! The split checkout's crash windows, driven step by step in-process: what recovery does
//! with a checkout left after its charge, and what a driver that lost its checkout to
//! recovery gives back. A real process cannot be killed reliably inside these windows (they
//! last one statement), so the steps are called directly on a real SQLite database.

use domain::admin::Audit;
use domain::inventory::ReservationState;
use domain::orders::{CheckoutRequest, OrderStatus};
use domain::users::UserId;

use super::{Confirmation, Reserved};
use crate::Monolith;

const BUYER: UserId = 1;

/// A seeded monolith on a fresh SQLite file, with one product in the buyer's cart.
async fn shop_with_a_cart() -> (tempfile::TempDir, Monolith) {
    let data = tempfile::tempdir().unwrap();
    let settings = api::Settings {
        db: format!("sqlite://{}", data.path().join("shop.db").display()),
        admin_token: Some("test-admin-token".into()),
        token_secret: Some("test-secret".into()),
        seed: Some(7),
        seed_products: 5,
        seed_users: 2,
        payments_latency_ms: 0,
        ..api::Settings::default()
    };
    let monolith = Monolith::open(settings).await.unwrap();
    monolith.shop.cart.set_quantity(BUYER, 2, 3).await.unwrap();
    (data, monolith)
}

/// Step 1 for the buyer's cart under `key`.
async fn reserve(monolith: &Monolith, key: &str) -> Reserved {
    let fingerprint = CheckoutRequest::default().fingerprint();
    monolith
        .orders
        .claim_and_reserve(BUYER, key, &fingerprint, None)
        .await
        .unwrap()
        .expect("the key is free")
}

async fn audit(monolith: &Monolith) -> Audit {
    monolith.admin.audit().await.unwrap()
}

fn reservation_state(audit: &Audit) -> ReservationState {
    assert_eq!(audit.reservations.len(), 1, "{:?}", audit.reservations);
    audit.reservations[0].state
}

#[tokio::test]
async fn a_checkout_abandoned_after_its_charge_is_confirmed_by_recovery() {
    let (_data, monolith) = shop_with_a_cart().await;
    let reserved = reserve(&monolith, "paid").await;
    let charge = monolith.orders.charge(&reserved).await.unwrap();
    // The process dies here: charged, not confirmed.

    assert!(monolith.orders.recover(reserved.order_id).await.unwrap());
    let audit = audit(&monolith).await;
    assert_eq!(audit.orders[0].status, OrderStatus::Confirmed);
    assert_eq!(
        audit.orders[0].charge_id.as_deref(),
        Some(charge.id.as_str())
    );
    assert_eq!(reservation_state(&audit), ReservationState::Committed);
    assert_eq!(audit.charges.len(), 1);
    assert!(
        audit.refunds.is_empty(),
        "the customer paid for a confirmed order"
    );
    assert!(monolith.shop.cart.lines(BUYER).await.unwrap().is_empty());
    assert!(
        !monolith.orders.recover(reserved.order_id).await.unwrap(),
        "a finished checkout is not recovered twice"
    );
}

#[tokio::test]
async fn a_checkout_abandoned_after_its_charge_whose_reservation_expired_is_refunded_and_cancelled()
{
    let (_data, monolith) = shop_with_a_cart().await;
    let reserved = reserve(&monolith, "late").await;
    let charge = monolith.orders.charge(&reserved).await.unwrap();
    // The sweeper gave the stock back before anyone confirmed.
    let mut connection = monolith.db.writer().acquire().await.unwrap();
    store::inventory::release_in(&mut connection, &super::reservation_id(reserved.order_id))
        .await
        .unwrap();
    drop(connection);

    assert!(monolith.orders.recover(reserved.order_id).await.unwrap());
    let audit = audit(&monolith).await;
    assert_eq!(audit.orders[0].status, OrderStatus::Cancelled);
    assert_eq!(reservation_state(&audit), ReservationState::Released);
    assert_eq!(audit.refunds.len(), 1);
    assert_eq!(audit.refunds[0].charge_id, charge.id);
    assert_eq!(audit.refunds[0].amount_cents, charge.amount_cents);
}

#[tokio::test]
async fn a_driver_that_lost_its_checkout_to_recovery_before_charging_refunds_its_charge() {
    let (_data, monolith) = shop_with_a_cart().await;
    let reserved = reserve(&monolith, "slow").await;
    // Recovery takes the checkout over while the provider answers, and finds no charge.
    assert!(monolith.orders.recover(reserved.order_id).await.unwrap());
    let charge = monolith.orders.charge(&reserved).await.unwrap();

    let confirmation = monolith.orders.confirm(&reserved, &charge).await.unwrap();
    assert!(matches!(confirmation, Confirmation::Lost));
    let answer = monolith.orders.after_lost(&reserved, &charge).await;
    assert!(
        matches!(answer, Err(domain::DomainError::Unavailable(_))),
        "{answer:?}"
    );
    let audit = audit(&monolith).await;
    assert_eq!(audit.orders[0].status, OrderStatus::Cancelled);
    assert_eq!(reservation_state(&audit), ReservationState::Released);
    assert_eq!(audit.charges.len(), 1);
    assert_eq!(audit.refunds.len(), 1, "the late charge is given back");
    assert_eq!(
        monolith.shop.cart.lines(BUYER).await.unwrap().len(),
        1,
        "the cart is kept for a retry"
    );
}

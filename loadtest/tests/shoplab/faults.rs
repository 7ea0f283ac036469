//! Real processes killed for real: the documented degraded answer while a service is gone,
//! and recovery once it is back — without restarting the gateway.

use std::time::{Duration, Instant};

use domain::Context;
use loadtest_results::component::Component;

use crate::support::{HOP_TIMEOUT, Lab, eventually};

const RECOVERY: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_killed_recommendations_service_empties_the_list_and_nothing_else() {
    let mut lab = Lab::start().await;
    let (_, before) = lab.get("/api/products/1").await;
    assert_eq!(before["availability"], "in_stock");
    let recommendations = Component::Service(Context::Recommendations);

    lab.deployment.kill(recommendations, 1).await.unwrap();
    let (status, product) = lab.get("/api/products/1").await;
    assert_eq!(status, 200, "the product page survives: {product}");
    assert_eq!(product["recommendations"], serde_json::json!([]));
    assert_eq!(product["availability"], "in_stock");
    assert_eq!(product["name"], before["name"]);
    assert_eq!(lab.get("/api/products").await.0, 200);
    assert_eq!(
        lab.get("/ready").await.0,
        200,
        "recommendations is not required"
    );

    lab.deployment.restart(recommendations, 1).await.unwrap();
    eventually(RECOVERY, "recommendations coming back", async || {
        lab.get("/api/products/1").await.1["recommendations"] == before["recommendations"]
    })
    .await;
    lab.stop().await;
}

#[tokio::test]
async fn a_killed_inventory_makes_availability_unknown_and_checkout_unavailable_until_it_restarts()
{
    let mut lab = Lab::start().await;
    let token = lab.log_in().await;
    assert_eq!(lab.put_in_cart(&token, 2, 1).await.0, 200);
    let inventory = Component::Service(Context::Inventory);
    let gateway_pid = lab.deployment.member(Component::Gateway, 1).unwrap().pid();

    lab.deployment.kill(inventory, 1).await.unwrap();
    let (status, product) = lab.get("/api/products/2").await;
    assert_eq!(status, 200, "browsing survives: {product}");
    assert_eq!(product["availability"], "unknown");
    assert_eq!(lab.get("/api/products?q=a").await.0, 200);
    assert_eq!(lab.get("/ready").await.0, 200, "inventory is not required");

    let started = Instant::now();
    let (status, body) = lab.checkout(&token, "while-inventory-is-down").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "checkout without inventory answered {body}");
    assert_eq!(body["error"]["code"], "unavailable");
    // Orders' calls to inventory (one retry) and the gateway's call to orders each have the
    // hop budget; refused connections fail well inside it.
    assert!(
        took < 3 * HOP_TIMEOUT,
        "checkout took {took:?} to say unavailable"
    );

    lab.deployment.restart(inventory, 1).await.unwrap();
    eventually(RECOVERY, "availability known again", async || {
        lab.get("/api/products/2").await.1["availability"] != "unknown"
    })
    .await;
    // Orders' own breaker for inventory may still be open (its callers' breakers see the
    // restart only through a probe, at most `hop_breaker_open_ms` later): checkout comes
    // back within the recovery deadline, each try with its own key. The first checkout may
    // have been finished by the saga's recovery and emptied the cart; putting the item back
    // makes each try independent of that.
    let mut tries = 0;
    eventually(RECOVERY, "checkout confirmed again", async || {
        tries += 1;
        assert_eq!(lab.put_in_cart(&token, 2, 1).await.0, 200);
        let (status, order) = lab
            .checkout(&token, &format!("after-inventory-is-back-{tries}"))
            .await;
        assert!(
            status == 201 || status == 503,
            "checkout after the restart answered {status} {order}"
        );
        status == 201
    })
    .await;
    assert_eq!(
        lab.deployment.member(Component::Gateway, 1).unwrap().pid(),
        gateway_pid,
        "the gateway was not restarted"
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_restarted_gateway_comes_back_on_the_same_public_and_admin_ports() {
    let mut lab = Lab::start().await;
    let (url, admin_url) = (
        lab.deployment.url().to_owned(),
        lab.deployment.admin_url().to_owned(),
    );
    let before = lab.deployment.member(Component::Gateway, 1).unwrap().pid();
    lab.deployment.restart(Component::Gateway, 1).await.unwrap();
    assert_ne!(
        lab.deployment.member(Component::Gateway, 1).unwrap().pid(),
        before
    );
    assert_eq!(lab.deployment.url(), url);
    assert_eq!(lab.deployment.admin_url(), admin_url);
    assert_eq!(lab.get("/api/products/1").await.0, 200);
    let audit = lab
        .http
        .get(lab.admin_url("/admin/audit"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 200);
    lab.stop().await;
}

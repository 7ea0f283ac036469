//! The microservices build working as a whole: the public API end to end through the
//! gateway, what the public port keeps out, and the admin port fanning out to the services.

use loadtest_results::component::Component;
use serde_json::json;

use crate::support::{ADMIN_TOKEN, Lab, SEED, answer};

#[tokio::test]
async fn the_public_port_serves_the_shop_end_to_end_and_nothing_under_admin_or_internal() {
    let lab = Lab::start().await;
    let components: Vec<Component> = lab
        .deployment
        .members()
        .iter()
        .map(|member| member.component())
        .collect();
    for name in [
        "catalog",
        "inventory",
        "cart",
        "payments",
        "users",
        "recommendations",
        "orders",
        "gateway",
    ] {
        let component = Component::parse(name).unwrap();
        assert!(components.contains(&component), "{name} was not started");
        assert!(
            lab.deployment.map().contains(name),
            "{name} is not on the map"
        );
    }

    let (status, ready) = lab.get("/ready").await;
    assert_eq!(status, 200, "gateway /ready answered {ready}");
    let (status, page) = lab.get("/api/products?per_page=5").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 20);
    let (status, product) = lab.get("/api/products/1").await;
    assert_eq!(status, 200);
    assert_eq!(product["availability"], "in_stock");
    assert!(product["recommendations"].is_array());
    let price = product["price_cents"].as_i64().expect("a price");

    // A registration goes to users; its token is verified by the gateway alone.
    let (status, user) = answer(lab.http.post(lab.url("/api/users")).json(&json!({
        "email": "new@shoplab.test", "password": "long enough password", "name": "New"
    })))
    .await;
    assert_eq!(status, 201, "registration answered {user}");

    let token = lab.log_in().await;
    let (status, cart) = lab.put_in_cart(&token, 1, 2).await;
    assert_eq!(status, 200, "cart answered {cart}");
    assert_eq!(cart["total_cents"], 2 * price);
    let (status, order) = lab.checkout(&token, "e2e-1").await;
    assert_eq!(status, 201, "checkout answered {order}");
    assert_eq!(order["total_cents"], 2 * price);
    let (status, replay) = lab.checkout(&token, "e2e-1").await;
    assert_eq!(
        (status, &replay),
        (201, &order),
        "a replay answers the same"
    );
    let (status, orders) = answer(lab.http.get(lab.url("/api/orders")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(orders["items"][0]["id"], order["id"]);

    for (method, path) in [
        ("GET", "/admin/audit"),
        ("POST", "/admin/reset"),
        ("GET", "/admin/faults"),
        ("DELETE", "/admin/faults"),
        ("GET", "/internal/catalog/products/1"),
        ("POST", "/internal/catalog/search"),
        ("GET", "/internal/inventory/stock/1"),
    ] {
        let request = lab
            .http
            .request(method.parse().unwrap(), lab.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({}));
        let (status, body) = answer(request).await;
        assert_eq!(
            status, 404,
            "{method} {path} on the public port answered {body}"
        );
        assert_eq!(body["error"]["code"], "not_found");
    }
    lab.stop().await;
}

#[tokio::test]
async fn the_admin_port_needs_the_token_and_fans_out_audit_faults_and_reset() {
    let lab = Lab::start().await;
    let (status, _) = answer(lab.http.get(lab.admin_url("/admin/audit"))).await;
    assert_eq!(status, 401, "no token, no audit");
    let (status, _) = answer(
        lab.http
            .get(lab.admin_url("/admin/audit"))
            .bearer_auth("wrong"),
    )
    .await;
    assert_eq!(status, 401);
    for path in ["/health", "/ready"] {
        let response = lab.http.get(lab.admin_url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} on the admin port");
    }
    // The scrape is the lab's and the operator's: the admin token, on either port.
    for url in [lab.admin_url("/metrics"), lab.url("/metrics")] {
        let (status, _) = answer(lab.http.get(&url)).await;
        assert_eq!(status, 401, "{url} without the admin token");
        let response = lab
            .http
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url} with the admin token");
        let text = response.text().await.unwrap();
        assert!(text.contains("http_requests_total"), "{url}: {text}");
    }

    let (status, audit) = answer(
        lab.http
            .get(lab.admin_url("/admin/audit"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "audit answered {audit}");
    assert_eq!(audit["stock"].as_array().map(Vec::len), Some(20));
    assert_eq!(audit["orders"], json!([]));
    assert_eq!(audit["charges"], json!([]));

    // A fault for catalog is switched on in the catalog process, and only there.
    let (status, fault) = answer(
        lab.http
            .post(lab.admin_url("/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"context": "catalog", "kind": "errors", "params": {"rate": 1.0}})),
    )
    .await;
    assert_eq!(status, 201, "fault answered {fault}");
    assert_eq!(fault["context"], "catalog");
    let (status, body) = lab.get("/api/products").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("unavailable"))
    );
    let (status, list) = answer(
        lab.http
            .get(lab.admin_url("/admin/faults"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (status, cleared) = answer(
        lab.http
            .delete(lab.admin_url("/admin/faults"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!((status, &cleared["cleared"]), (200, &json!(1)));
    assert_eq!(lab.get("/api/products").await.0, 200);
    let (status, _) = answer(
        lab.http
            .post(lab.admin_url("/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"context": "warehouse", "kind": "errors"})),
    )
    .await;
    assert_eq!(status, 422, "an unknown context is refused at the gateway");

    // Reset reaches every service: the catalog shrinks and users log in with the new seed.
    let new_seed = SEED + 2;
    let (status, summary) = answer(
        lab.http
            .post(lab.admin_url("/admin/reset"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"products": 5, "stock": 3, "users": 1, "seed": new_seed})),
    )
    .await;
    assert_eq!(status, 200, "reset answered {summary}");
    assert_eq!(summary["user_password"], format!("shoplab-{new_seed}"));
    assert_eq!(lab.get("/api/products").await.1["total"], 5);
    let (status, _) = answer(lab.http.post(lab.url("/api/sessions")).json(&json!({
        "email": "user1@shoplab.test", "password": format!("shoplab-{new_seed}")
    })))
    .await;
    assert_eq!(status, 200, "users was reset with the new seed");
    let (_, audit) = answer(
        lab.http
            .get(lab.admin_url("/admin/audit"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(audit["stock"].as_array().map(Vec::len), Some(5));
    lab.stop().await;
}

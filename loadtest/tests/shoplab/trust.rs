//! Zero trust between services (issue 18, item 1): every attack found then — a charge, a
//! refund, stock reserved and committed, a cart filled or cleared, an order placed for
//! another user, another user's orders read — sent straight to the service's own port of a
//! running micro build, with no token, a forged one, an expired one, one for another
//! service and a valid one from a caller the route does not serve. Each gets 401 or 403,
//! and the audit, the cart and the orders are the same afterwards.

use domain::Context;
use domain::trust::{Keyring, Peer, TOKEN_HEADER};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Lab, answer};

const GATEWAY: Peer = Peer::Gateway;
const fn service(context: Context) -> Peer {
    Peer::Service(context)
}

/// One internal call an attacker would make, and who may really make it.
struct Attack {
    what: &'static str,
    callee: Context,
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
    /// A caller the route serves: the forged, expired and misaddressed tokens claim it.
    allowed: Peer,
    /// A caller with a valid key that the route does not serve.
    not_allowed: Peer,
}

/// The ways to present oneself, each answered with the status it must get.
#[derive(Clone, Copy, Debug)]
enum Credential {
    Nothing,
    Forged,
    Expired,
    ForAnotherService,
    NotAllowed,
}

impl Credential {
    const ALL: [Credential; 5] = [
        Credential::Nothing,
        Credential::Forged,
        Credential::Expired,
        Credential::ForAnotherService,
        Credential::NotAllowed,
    ];

    fn expected_status(self) -> u16 {
        match self {
            Credential::NotAllowed => 403,
            _ => 401,
        }
    }

    fn token(self, keys: &Keyring, attack: &Attack) -> Option<String> {
        let callee = service(attack.callee);
        let now = domain::now_ms() / 1000;
        match self {
            Credential::Nothing => None,
            // The right names, signed with a key of another deployment.
            Credential::Forged => Keyring::generate()
                .identity(attack.allowed)
                .token_for(callee)
                .ok(),
            Credential::Expired => keys
                .identity(attack.allowed)
                .issue(callee, now - 180, now - 120)
                .ok(),
            Credential::ForAnotherService => {
                let elsewhere = match attack.callee {
                    Context::Catalog => service(Context::Recommendations),
                    _ => service(Context::Catalog),
                };
                keys.identity(attack.allowed).token_for(elsewhere).ok()
            }
            Credential::NotAllowed => keys.identity(attack.not_allowed).token_for(callee).ok(),
        }
    }
}

/// Everything the attacks could change, read through the admin port and the public API.
async fn state(lab: &Lab, user_token: &str) -> Value {
    let (status, mut audit) = answer(
        lab.http
            .get(lab.admin_url("/admin/audit"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "audit answered {audit}");
    audit
        .as_object_mut()
        .expect("the audit is an object")
        .remove("taken_at_ms");
    let (status, cart) = answer(lab.http.get(lab.url("/api/cart")).bearer_auth(user_token)).await;
    assert_eq!(status, 200, "the cart answered {cart}");
    let (status, orders) =
        answer(lab.http.get(lab.url("/api/orders")).bearer_auth(user_token)).await;
    assert_eq!(status, 200, "the orders answered {orders}");
    json!({ "audit": audit, "cart": cart, "orders": orders })
}

fn attacks(charge_id: &str) -> Vec<Attack> {
    use reqwest::Method;
    let orders = service(Context::Orders);
    vec![
        Attack {
            what: "charge a user",
            callee: Context::Payments,
            method: Method::PUT,
            path: "/internal/payments/charges/attack-charge".into(),
            body: Some(json!({ "user_id": 1, "amount_cents": 99_900 })),
            allowed: orders,
            not_allowed: GATEWAY,
        },
        Attack {
            what: "refund a real charge",
            callee: Context::Payments,
            method: Method::POST,
            path: format!("/internal/payments/charges/{charge_id}/refund"),
            body: None,
            allowed: orders,
            not_allowed: service(Context::Inventory),
        },
        Attack {
            what: "reserve 900 units",
            callee: Context::Inventory,
            method: Method::PUT,
            path: "/internal/inventory/reservations/attack-stock".into(),
            body: Some(json!({
                "lines": [{ "product_id": 1, "quantity": 900 }],
                "ttl_ms": 60_000,
            })),
            allowed: orders,
            not_allowed: GATEWAY,
        },
        Attack {
            what: "commit a reservation",
            callee: Context::Inventory,
            method: Method::POST,
            path: "/internal/inventory/reservations/attack-stock/commit".into(),
            body: None,
            allowed: orders,
            not_allowed: GATEWAY,
        },
        Attack {
            what: "fill someone's cart",
            callee: Context::Cart,
            method: Method::PUT,
            path: "/internal/cart/1/items/3".into(),
            body: Some(json!({ "quantity": 5 })),
            allowed: GATEWAY,
            not_allowed: orders,
        },
        Attack {
            what: "clear someone's cart",
            callee: Context::Cart,
            method: Method::DELETE,
            path: "/internal/cart/1".into(),
            body: None,
            allowed: orders,
            not_allowed: GATEWAY,
        },
        Attack {
            what: "place an order for another user",
            callee: Context::Orders,
            method: Method::POST,
            path: "/internal/orders/checkout".into(),
            body: Some(json!({
                "user_id": 1,
                "idempotency_key": "attack-order",
                "request": {},
            })),
            allowed: GATEWAY,
            not_allowed: service(Context::Payments),
        },
        Attack {
            what: "read another user's orders",
            callee: Context::Orders,
            method: Method::GET,
            path: "/internal/orders/1".into(),
            body: None,
            allowed: GATEWAY,
            not_allowed: service(Context::Cart),
        },
    ]
}

#[tokio::test]
async fn every_attack_on_a_service_port_gets_401_or_403_and_changes_nothing() {
    let lab = Lab::start().await;
    let keys = lab.deployment.service_keys().clone();

    // Normal traffic through the gateway works, and leaves a real charge to try to refund
    // and a cart with something in it to try to clear.
    let user_token = lab.log_in().await;
    let (status, cart) = lab.put_in_cart(&user_token, 1, 1).await;
    assert_eq!(status, 200, "{cart}");
    let (status, order) = lab.checkout(&user_token, "trust-checkout").await;
    assert!(
        status == 200 || status == 201,
        "checkout answered {status} {order}"
    );
    let (status, cart) = lab.put_in_cart(&user_token, 2, 1).await;
    assert_eq!(status, 200, "{cart}");

    let before = state(&lab, &user_token).await;
    let charge_id = before["audit"]["charges"][0]["id"]
        .as_str()
        .expect("the checkout's charge is in the audit")
        .to_owned();

    let mut failures = Vec::new();
    for attack in attacks(&charge_id) {
        let url = format!("{}{}", lab.deployment.urls(attack.callee)[0], attack.path);
        for credential in Credential::ALL {
            let mut request = lab.http.request(attack.method.clone(), &url);
            if let Some(body) = &attack.body {
                request = request.json(body);
            }
            if let Some(token) = credential.token(&keys, &attack) {
                request = request.header(TOKEN_HEADER, token);
            }
            let (status, body) = answer(request).await;
            let expected = credential.expected_status();
            let code = if expected == 401 {
                "unauthenticated"
            } else {
                "forbidden"
            };
            if status != expected || body["error"]["code"] != code {
                failures.push(format!(
                    "{} with {credential:?}: {status} {body}",
                    attack.what
                ));
            }
        }
    }
    assert!(failures.is_empty(), "attacks not refused: {failures:#?}");

    let after = state(&lab, &user_token).await;
    assert_eq!(before, after, "a refused attack changed the shop");

    // The same keys let the callers the routes serve through: the refusals above are about
    // the credential, not a service that refuses everyone.
    let orders_reads_the_cart = lab
        .http
        .get(format!(
            "{}/internal/cart/1",
            lab.deployment.urls(Context::Cart)[0]
        ))
        .header(
            TOKEN_HEADER,
            keys.identity(service(Context::Orders))
                .token_for(service(Context::Cart))
                .expect("a token"),
        );
    let (status, lines) = answer(orders_reads_the_cart).await;
    assert_eq!(status, 200, "{lines}");
    assert_eq!(lines.as_array().map(Vec::len), Some(1), "{lines}");
    lab.stop().await;
}

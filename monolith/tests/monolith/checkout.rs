//! Checkout around the payment provider: what the split checkout (the default) lets run while
//! the provider answers, what it leaves after a failed charge or a crash, and how a repeated
//! Idempotency-Key is answered. The payments latency fault stands for a slow provider.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{ADMIN_TOKEN, Process};

/// The seed `Process::start` seeds with; seeded users' passwords derive from it.
const SEED: u64 = 7;

impl Process {
    async fn login(&self, index: u32) -> String {
        let answer: Value = self
            .client
            .post(self.url("/api/sessions"))
            .json(&json!({
                "email": domain::seed::seed_user_email(index),
                "password": domain::seed::seed_user_password(SEED),
            }))
            .send()
            .await
            .expect("log in")
            .json()
            .await
            .expect("a session body");
        answer["token"].as_str().expect("a token").to_owned()
    }

    async fn put_in_cart(&self, token: &str, product_id: i64, quantity: i64) -> u16 {
        self.client
            .put(self.url(&format!("/api/cart/items/{product_id}")))
            .bearer_auth(token)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .expect("put in cart")
            .status()
            .as_u16()
    }

    /// `POST /api/orders`: the status and the body.
    fn checkout(
        &self,
        token: &str,
        key: &str,
        body: Value,
    ) -> impl std::future::Future<Output = (u16, Value)> + Send + 'static {
        let request = self
            .client
            .post(self.url("/api/orders"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let response = request.send().await.expect("checkout");
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
    }

    async fn audit(&self) -> Value {
        self.client
            .get(self.url("/admin/audit"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("an audit body")
    }

    /// Polls the audit until `condition` holds, failing after `deadline`.
    async fn audit_until(
        &self,
        deadline: Duration,
        what: &str,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let audit = self.audit().await;
            if condition(&audit) {
                return audit;
            }
            assert!(
                Instant::now() < until,
                "{what} did not happen within {deadline:?}; audit: {audit}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn held_reservations(audit: &Value) -> usize {
    audit["reservations"]
        .as_array()
        .expect("reservations")
        .iter()
        .filter(|reservation| reservation["state"] == "held")
        .count()
}

fn stock_of(audit: &Value, product_id: i64) -> &Value {
    audit["stock"]
        .as_array()
        .expect("stock")
        .iter()
        .find(|row| row["product_id"] == product_id)
        .expect("a stock row")
}

fn count(audit: &Value, table: &str) -> usize {
    audit[table].as_array().expect(table).len()
}

/// A monolith (split checkout) that waits `payments_timeout_ms` for the provider.
async fn patient(payments_timeout_ms: &str) -> Process {
    let data = tempfile::tempdir().unwrap();
    Process::start_with(
        data,
        &["--seed", "7"],
        &[("SHOPLAB_PAYMENTS_TIMEOUT_MS", payments_timeout_ms)],
    )
    .await
}

#[tokio::test]
async fn a_cart_write_during_a_slow_charge_finishes_before_the_checkout_returns() {
    let monolith = patient("10000").await;
    let buyer = monolith.login(1).await;
    let browser = monolith.login(2).await;
    assert_eq!(monolith.put_in_cart(&buyer, 1, 1).await, 200);
    monolith
        .inject(json!({"context": "payments", "kind": "latency", "params": {"ms": 2000}}))
        .await;
    let checkout = tokio::spawn(monolith.checkout(&buyer, "slow-charge", json!({})));
    // The reservation is committed before the charge: seeing it held means the checkout is
    // waiting for the provider now.
    monolith
        .audit_until(Duration::from_secs(10), "the reservation", |audit| {
            held_reservations(audit) == 1
        })
        .await;
    let cart_write = monolith.put_in_cart(&browser, 2, 3).await;
    assert!(
        !checkout.is_finished(),
        "the cart write must finish while the checkout still waits for the provider"
    );
    assert_eq!(cart_write, 200);
    let (status, order) = checkout.await.unwrap();
    assert_eq!(status, 201, "the slow checkout still succeeds: {order}");
    assert_eq!(order["status"], "confirmed");
}

#[tokio::test]
async fn in_single_mode_a_cart_write_waits_for_the_checkout_transaction_around_the_charge() {
    let data = tempfile::tempdir().unwrap();
    let monolith = Process::start_with(
        data,
        &["--seed", "7"],
        &[
            ("SHOPLAB_CHECKOUT_MODE", "single"),
            ("SHOPLAB_DB_ACQUIRE_TIMEOUT_MS", "10000"),
        ],
    )
    .await;
    let buyer = monolith.login(1).await;
    let browser = monolith.login(2).await;
    assert_eq!(monolith.put_in_cart(&buyer, 1, 1).await, 200);
    monolith
        .inject(json!({"context": "payments", "kind": "latency", "params": {"ms": 1500}}))
        .await;
    let checkout = tokio::spawn(monolith.checkout(&buyer, "single-slow", json!({})));
    // Nothing of the single transaction is visible before it commits; the request itself is:
    // the scrape counts itself, so two in flight means the checkout has arrived.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = monolith
            .client
            .get(monolith.url("/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let in_flight = text
            .lines()
            .find_map(|line| line.strip_prefix("http_requests_in_flight "))
            .and_then(|value| value.trim().parse::<u64>().ok());
        if in_flight.is_some_and(|in_flight| in_flight >= 2) {
            break;
        }
        assert!(Instant::now() < until, "the checkout never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(monolith.put_in_cart(&browser, 2, 3).await, 200);
    // The cart write needed the one writer, which the checkout held until it committed: so
    // by the time the write is answered, the order is confirmed.
    let audit = monolith.audit().await;
    let orders = audit["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{audit}");
    assert_eq!(orders[0]["status"], "confirmed");
    let (status, _) = checkout.await.unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_failed_charge_leaves_no_held_reservation_and_no_order_and_a_retry_runs_afresh() {
    let monolith = Process::start().await;
    let buyer = monolith.login(1).await;
    assert_eq!(monolith.put_in_cart(&buyer, 4, 2).await, 200);
    let before = monolith.audit().await;
    monolith
        .inject(json!({"context": "payments", "kind": "errors", "params": {"rate": 1.0}}))
        .await;
    let (status, body) = monolith.checkout(&buyer, "failing-charge", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");

    let audit = monolith.audit().await;
    assert_eq!(held_reservations(&audit), 0, "{audit}");
    assert_eq!(
        stock_of(&audit, 4),
        stock_of(&before, 4),
        "the stock is back"
    );
    assert_eq!(count(&audit, "charges"), 0, "nothing was charged");
    let orders: Value = monolith
        .client
        .get(monolith.url("/api/orders"))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["items"], json!([]), "the buyer has no order");
    // The audit keeps the cancelled order with its key freed, as the saga does.
    let cancelled = &audit["orders"][0];
    assert_eq!(cancelled["status"], "cancelled");
    assert_ne!(cancelled["idempotency_key"], "failing-charge");

    monolith.heal().await;
    let (status, order) = monolith.checkout(&buyer, "failing-charge", json!({})).await;
    assert_eq!(status, 201, "the freed key runs afresh: {order}");
    assert_eq!(order["status"], "confirmed");
    let audit = monolith.audit().await;
    assert_eq!(count(&audit, "charges"), 1);
    assert_eq!(held_reservations(&audit), 0);
}

#[tokio::test]
async fn a_key_repeated_while_its_checkout_runs_gets_the_same_order_and_another_body_is_refused() {
    let monolith = Process::start().await;
    let buyer = monolith.login(1).await;
    assert_eq!(monolith.put_in_cart(&buyer, 3, 1).await, 200);
    monolith
        .inject(json!({"context": "payments", "kind": "latency", "params": {"ms": 1000}}))
        .await;
    let first = tokio::spawn(monolith.checkout(&buyer, "twice", json!({})));
    monolith
        .audit_until(Duration::from_secs(10), "the reservation", |audit| {
            held_reservations(audit) == 1
        })
        .await;
    let (status, refused) = monolith
        .checkout(&buyer, "twice", json!({"note": "another body"}))
        .await;
    assert_eq!(
        status, 422,
        "another body with a key in use is refused: {refused}"
    );
    // The repeat waits for the first request's answer rather than answering 503.
    let (status, second) = monolith.checkout(&buyer, "twice", json!({})).await;
    let (first_status, first) = first.await.unwrap();
    assert_eq!((first_status, status), (201, 201), "{first} {second}");
    assert_eq!(first["id"], second["id"], "one order for one key");
    let audit = monolith.audit().await;
    assert_eq!(count(&audit, "orders"), 1);
    assert_eq!(count(&audit, "charges"), 1, "one charge for one key");

    let (status, third) = monolith.checkout(&buyer, "twice", json!({})).await;
    assert_eq!(status, 201);
    assert_eq!(third["id"], first["id"]);
    assert_eq!(count(&monolith.audit().await, "charges"), 1);
}

#[tokio::test]
async fn a_checkout_killed_while_the_provider_answers_is_cancelled_after_restart() {
    let mut monolith = patient("60000").await;
    let buyer = monolith.login(1).await;
    assert_eq!(monolith.put_in_cart(&buyer, 5, 2).await, 200);
    let before = monolith.audit().await;
    monolith
        .inject(json!({"context": "payments", "kind": "latency", "params": {"ms": 30000}}))
        .await;
    let _checkout = tokio::spawn(monolith.checkout(&buyer, "crash", json!({})));
    monolith
        .audit_until(Duration::from_secs(10), "the reservation", |audit| {
            held_reservations(audit) == 1
        })
        .await;
    nix::sys::signal::kill(monolith.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    monolith.wait_exit(Duration::from_secs(10));

    // The same database, not reseeded; a short TTL makes the left checkout count as
    // abandoned after a second of silence.
    let data = monolith.take_data();
    let restarted = Process::start_with(data, &[], &[("SHOPLAB_RESERVATION_TTL_MS", "1000")]).await;
    let audit = restarted
        .audit_until(
            Duration::from_secs(15),
            "the abandoned checkout to be cancelled",
            |audit| audit["orders"][0]["status"] == "cancelled",
        )
        .await;
    assert_eq!(held_reservations(&audit), 0, "{audit}");
    assert_eq!(
        stock_of(&audit, 5),
        stock_of(&before, 5),
        "the stock is back"
    );
    assert_eq!(count(&audit, "charges"), 0);

    let buyer = restarted.login(1).await;
    let (status, order) = restarted.checkout(&buyer, "crash", json!({})).await;
    assert_eq!(status, 201, "the freed key runs afresh: {order}");
}

#[tokio::test]
async fn a_provider_that_does_not_answer_within_its_budget_fails_the_checkout_and_holds_nothing() {
    let monolith = patient("300").await;
    let buyer = monolith.login(1).await;
    assert_eq!(monolith.put_in_cart(&buyer, 6, 1).await, 200);
    let before = monolith.audit().await;
    monolith
        .inject(json!({"context": "payments", "kind": "hang"}))
        .await;
    let (status, body) = monolith.checkout(&buyer, "hung", json!({})).await;
    assert_eq!(status, 503, "{body}");
    let audit = monolith.audit().await;
    assert_eq!(held_reservations(&audit), 0, "{audit}");
    assert_eq!(stock_of(&audit, 6), stock_of(&before, 6));
    assert_eq!(count(&audit, "charges"), 0);
    assert_eq!(audit["orders"][0]["status"], "cancelled");
}

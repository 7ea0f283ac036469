//! The Goose journeys both builds get: `browse` (list, search, product page) and `buy` (log
//! in as a seeded user, add to cart, check out with an Idempotency-Key, read the order).
//!
//! Every request goes through [`send`], which hands it to Goose (so Goose's own metrics,
//! including the coordinated-omission back-fill, see it) and also writes one
//! [`RequestRecord`] on the lab's clock. Goose has no per-second series and no notion of a
//! write that may have been applied, so the timelines, the before/during/after windows and
//! the invariant checker's request history all come from these records.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use goose::prelude::*;
use rand::Rng as _;
use serde_json::Value;

use loadtest_results::history::{Outcome, RequestRecord};

/// The route templates, one spelling for both builds (they are transaction and request names).
pub const LIST: &str = "GET /api/products";
pub const PRODUCT: &str = "GET /api/products/{id}";
pub const LOGIN: &str = "POST /api/sessions";
pub const ADD_TO_CART: &str = "PUT /api/cart/items/{product_id}";
pub const CHECKOUT: &str = "POST /api/orders";
pub const READ_ORDER: &str = "GET /api/orders/{id}";
/// The null endpoint of the calibration (the front door's, which answers 204 and nothing).
pub const NULL: &str = "GET /null";

/// Words the seed puts in product names, so searches find something.
const SEARCH_WORDS: [&str; 6] = ["lamp", "chair", "steel", "blue", "classic", "mug"];

/// What the journeys need to know about the seeded data.
#[derive(Clone, Debug)]
pub struct Shopfront {
    /// Products are ids `1..=products`.
    pub products: u32,
    /// Seeded users `user1@shoplab.test ..= user<users>@shoplab.test`.
    pub users: u32,
    /// Every seeded user's password.
    pub password: String,
    /// Relative weights of the two journeys.
    pub browse_weight: usize,
    pub buy_weight: usize,
}

/// Collects every request's record on one clock shared with the fault and deploy events.
#[derive(Debug)]
pub struct Recorder {
    epoch: Instant,
    records: Mutex<Vec<RequestRecord>>,
}

impl Recorder {
    pub fn new(epoch: Instant) -> Arc<Recorder> {
        Arc::new(Recorder {
            epoch,
            records: Mutex::new(Vec::with_capacity(64 * 1024)),
        })
    }

    /// Milliseconds since the experiment's epoch.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn push(&self, record: RequestRecord) {
        self.records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(record);
    }

    /// How many requests have been recorded so far.
    pub fn count(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    /// Everything recorded so far, in arrival order.
    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A buy journey's session: who it is logged in as.
#[derive(Clone)]
struct Session {
    email: String,
    token: Option<String>,
}

/// The two scenarios, weighted, recording into `recorder`.
pub fn scenarios(shop: &Shopfront, recorder: &Arc<Recorder>) -> anyhow::Result<Vec<Scenario>> {
    let browse = Scenario::new("browse")
        .set_weight(shop.browse_weight.max(1))?
        .register_transaction(step(shop, recorder, "list", browse_list))
        .register_transaction(step(shop, recorder, "search", browse_search))
        .register_transaction(step(shop, recorder, "product page", browse_product));
    let buy = Scenario::new("buy")
        .set_weight(shop.buy_weight.max(1))?
        .register_transaction(step(shop, recorder, "log in", buy_login).set_on_start())
        .register_transaction(step(shop, recorder, "add to cart", buy_add))
        .register_transaction(step(shop, recorder, "check out and read", buy_checkout));
    let mut scenarios = Vec::new();
    if shop.browse_weight > 0 {
        scenarios.push(browse);
    }
    if shop.buy_weight > 0 {
        scenarios.push(buy);
    }
    anyhow::ensure!(!scenarios.is_empty(), "both journey weights are 0");
    Ok(scenarios)
}

/// One scenario of one request to the null endpoint, recorded as journey `null`: what the
/// generator can drive when the server costs nothing.
pub fn null_scenario(recorder: &Arc<Recorder>) -> Scenario {
    let recorder = recorder.clone();
    Scenario::new("null").register_transaction(
        Transaction::new(Arc::new(move |user| {
            let recorder = recorder.clone();
            Box::pin(async move {
                send(user, &recorder, "null", Call::get(NULL, "/null")).await?;
                Ok(())
            })
        }))
        .set_name("null"),
    )
}

/// The signature of one journey step: the user, the shop, the recorder.
type Step = for<'a> fn(
    &'a mut GooseUser,
    Arc<Shopfront>,
    Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + 'a>>;

fn step(shop: &Shopfront, recorder: &Arc<Recorder>, name: &str, function: Step) -> Transaction {
    let shop = Arc::new(shop.clone());
    let recorder = recorder.clone();
    Transaction::new(Arc::new(move |user| {
        function(user, shop.clone(), recorder.clone())
    }))
    .set_name(name)
}

fn browse_list(
    user: &mut GooseUser,
    _: Arc<Shopfront>,
    recorder: Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move {
        let page = rand::rng().random_range(1..=5);
        let path = format!("/api/products?page={page}&per_page=20");
        send(user, &recorder, "browse", Call::get(LIST, &path)).await?;
        Ok(())
    })
}

fn browse_search(
    user: &mut GooseUser,
    _: Arc<Shopfront>,
    recorder: Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move {
        let word = SEARCH_WORDS[rand::rng().random_range(0..SEARCH_WORDS.len())];
        let path = format!("/api/products?q={word}");
        send(user, &recorder, "browse", Call::get(LIST, &path)).await?;
        Ok(())
    })
}

fn browse_product(
    user: &mut GooseUser,
    shop: Arc<Shopfront>,
    recorder: Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move {
        let id = rand::rng().random_range(1..=shop.products.max(1));
        let path = format!("/api/products/{id}");
        send(user, &recorder, "browse", Call::get(PRODUCT, &path)).await?;
        Ok(())
    })
}

fn buy_login(
    user: &mut GooseUser,
    shop: Arc<Shopfront>,
    recorder: Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move {
        // One seeded user per Goose user, so no two journeys share a cart.
        let email = format!(
            "user{}@shoplab.test",
            user.weighted_users_index as u32 % shop.users.max(1) + 1
        );
        user.set_session_data(Session {
            email: email.clone(),
            token: None,
        });
        login(user, &shop, &recorder).await
    })
}

async fn login(user: &mut GooseUser, shop: &Shopfront, recorder: &Recorder) -> TransactionResult {
    let email = session_email(user);
    let body = serde_json::json!({"email": email, "password": shop.password});
    let answer = send(
        user,
        recorder,
        "buy",
        Call::write(LOGIN, "/api/sessions", body),
    )
    .await?;
    let token = answer
        .body
        .as_ref()
        .and_then(|body| body["token"].as_str())
        .map(str::to_owned);
    if let Some(session) = user.get_session_data_mut::<Session>() {
        session.token = token;
    }
    Ok(())
}

fn buy_add(
    user: &mut GooseUser,
    shop: Arc<Shopfront>,
    recorder: Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move {
        // A login lost to a fault is tried again here rather than abandoning the journey.
        if token(user).is_none() {
            login(user, &shop, &recorder).await?;
        }
        let Some(token) = token(user) else {
            return Ok(());
        };
        let id = rand::rng().random_range(1..=shop.products.max(1));
        let quantity = rand::rng().random_range(1..=3);
        let path = format!("/api/cart/items/{id}");
        let call = Call::write(
            ADD_TO_CART,
            &path,
            serde_json::json!({ "quantity": quantity }),
        )
        .put()
        .bearer(&token);
        send(user, &recorder, "buy", call).await?;
        Ok(())
    })
}

fn buy_checkout(
    user: &mut GooseUser,
    _: Arc<Shopfront>,
    recorder: Arc<Recorder>,
) -> std::pin::Pin<Box<dyn Future<Output = TransactionResult> + Send + '_>> {
    Box::pin(async move {
        let Some(token) = token(user) else {
            return Ok(());
        };
        let key = format!("lab-{:032x}", rand::rng().random::<u128>());
        let call = Call::write(CHECKOUT, "/api/orders", serde_json::json!({}))
            .bearer(&token)
            .idempotency_key(&key);
        let answer = send(user, &recorder, "buy", call).await?;
        let Some(order_id) = answer.order_id else {
            return Ok(());
        };
        let path = format!("/api/orders/{order_id}");
        let call = Call::get(READ_ORDER, &path).bearer(&token);
        send(user, &recorder, "buy", call).await?;
        Ok(())
    })
}

fn session_email(user: &GooseUser) -> String {
    user.get_session_data::<Session>()
        .map(|session| session.email.clone())
        .unwrap_or_default()
}

fn token(user: &GooseUser) -> Option<String> {
    user.get_session_data::<Session>()
        .and_then(|session| session.token.clone())
}

/// One request of a journey.
struct Call<'a> {
    name: &'static str,
    path: &'a str,
    method: GooseMethod,
    body: Option<Value>,
    bearer: Option<String>,
    idempotency_key: Option<String>,
}

impl<'a> Call<'a> {
    fn get(name: &'static str, path: &'a str) -> Call<'a> {
        Call {
            name,
            path,
            method: GooseMethod::Get,
            body: None,
            bearer: None,
            idempotency_key: None,
        }
    }

    fn write(name: &'static str, path: &'a str, body: Value) -> Call<'a> {
        Call {
            method: GooseMethod::Post,
            body: Some(body),
            ..Call::get(name, path)
        }
    }

    fn put(mut self) -> Call<'a> {
        self.method = GooseMethod::Put;
        self
    }

    fn bearer(mut self, token: &str) -> Call<'a> {
        self.bearer = Some(token.to_owned());
        self
    }

    fn idempotency_key(mut self, key: &str) -> Call<'a> {
        self.idempotency_key = Some(key.to_owned());
        self
    }
}

/// What a journey needs back from one request.
struct Answer {
    body: Option<Value>,
    order_id: Option<i64>,
}

/// Sends `call` through Goose and records it on the lab's clock.
async fn send(
    user: &mut GooseUser,
    recorder: &Recorder,
    journey: &str,
    call: Call<'_>,
) -> Result<Answer, Box<TransactionError>> {
    let is_write = call.method != GooseMethod::Get;
    let mut builder = user.get_request_builder(&call.method, call.path)?;
    if let Some(body) = &call.body {
        builder = builder.json(body);
    }
    if let Some(token) = &call.bearer {
        builder = builder.bearer_auth(token);
    }
    if let Some(key) = &call.idempotency_key {
        builder = builder.header("Idempotency-Key", key);
    }
    let request = GooseRequest::builder()
        .method(call.method)
        .path(call.path)
        .name(call.name)
        .set_request_builder(builder)
        .build();
    let t_ms = recorder.now_ms();
    let started = Instant::now();
    let response = user.request(request).await?;
    let mut timed_out = false;
    let (status, body) = match response.response {
        Ok(response) => {
            let status = response.status().as_u16();
            // The body is read for every request (a real client would), parsed only when
            // the journey needs something from it.
            let bytes = response.bytes().await.unwrap_or_default();
            let wanted = call.name == LOGIN || call.name == CHECKOUT;
            let body = wanted
                .then(|| serde_json::from_slice::<Value>(&bytes).ok())
                .flatten();
            (status, body)
        }
        Err(error) => {
            // A time-out is a failure that cost the client the whole timeout; the report
            // counts it apart from fast errors (a refused connection).
            timed_out = error.is_timeout();
            (0, None)
        }
    };
    let latency_us = started.elapsed().as_micros() as u64;
    let created = call.name == CHECKOUT && status == 201;
    let order_id = created
        .then(|| body.as_ref().and_then(|body| body["id"].as_i64()))
        .flatten();
    let total_cents = created
        .then(|| body.as_ref().and_then(|body| body["total_cents"].as_i64()))
        .flatten();
    recorder.push(RequestRecord {
        t_ms,
        journey: journey.to_owned(),
        transaction: call.name.to_owned(),
        status,
        latency_us,
        outcome: Outcome::classify(is_write, status),
        timed_out,
        idempotency_key: call.idempotency_key.clone(),
        order_id,
        total_cents,
        user: (journey == "buy").then(|| session_email(user)),
    });
    Ok(Answer { body, order_id })
}

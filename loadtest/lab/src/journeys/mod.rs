//! The journeys both builds get, written once: `browse` (list, search, product page) and
//! `buy` (log in as a seeded user, add to cart, check out with an Idempotency-Key, read the
//! order).
//!
//! A journey is a list of [`Step`]s; a step is plain async code over a [`Client`], the one
//! thing that differs between the two ways the lab drives load:
//!
//! - [`goose`] adapts the steps to Goose transactions (closed loop: a fixed number of users,
//!   each waiting for its answer), where Goose's own metrics, its coordinated-omission
//!   back-fill included, see every request;
//! - `crate::open_loop` runs a whole journey per arrival at a target rate, over a plain
//!   reqwest client, each request's latency measured from the moment it was due.
//!
//! Both write one [`RequestRecord`] per request on the lab's clock ([`Recorder`]). Goose has
//! no per-second series and no notion of a write that may have been applied, so the
//! timelines, the before/during/after windows and the invariant checker's request history
//! all come from these records.

pub mod goose;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::Rng as _;
use serde_json::Value;

use loadtest_results::history::{Outcome, RequestRecord};

pub use goose::{null_scenario, scenarios};

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
    /// Where this generator's users start among them (0 for one generator): several
    /// generators take disjoint users, so no two sessions share one cart.
    pub first_user: u32,
    /// Every seeded user's password.
    pub password: String,
    /// Relative weights of the two journeys.
    pub browse_weight: usize,
    pub buy_weight: usize,
}

/// The two journeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journey {
    Browse,
    Buy,
}

impl Journey {
    /// The journey's name in the records (`RequestRecord::journey`).
    pub fn as_str(self) -> &'static str {
        match self {
            Journey::Browse => "browse",
            Journey::Buy => "buy",
        }
    }

    /// Its steps in order. In Goose's closed loop a buy user logs in once (an on-start
    /// transaction) and then loops over the rest; an open-loop arrival runs them all once.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Journey::Browse => &[Step::List, Step::Search, Step::ProductPage],
            Journey::Buy => &[Step::LogIn, Step::AddToCart, Step::CheckOutAndRead],
        }
    }
}

/// One step of a journey: one request, or two where the second needs the first's answer
/// (check out, then read the order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    List,
    Search,
    ProductPage,
    LogIn,
    AddToCart,
    CheckOutAndRead,
}

impl Step {
    /// The step's name (Goose's transaction name).
    pub fn name(self) -> &'static str {
        match self {
            Step::List => "list",
            Step::Search => "search",
            Step::ProductPage => "product page",
            Step::LogIn => "log in",
            Step::AddToCart => "add to cart",
            Step::CheckOutAndRead => "check out and read",
        }
    }

    /// The journey the step belongs to.
    pub fn journey(self) -> Journey {
        match self {
            Step::List | Step::Search | Step::ProductPage => Journey::Browse,
            Step::LogIn | Step::AddToCart | Step::CheckOutAndRead => Journey::Buy,
        }
    }

    /// Runs the step over `client`. A request that fails is recorded and the step goes on
    /// (or ends) as a user would; only the client's own errors (Goose could not build the
    /// request) end it with `Err`.
    pub async fn run<C: Client>(self, client: &mut C, shop: &Shopfront) -> Result<(), C::Error> {
        let journey = self.journey().as_str();
        match self {
            Step::List => {
                let page = rand::rng().random_range(1..=5);
                let path = format!("/api/products?page={page}&per_page=20");
                client.send(journey, Call::get(LIST, &path)).await?;
            }
            Step::Search => {
                let word = SEARCH_WORDS[rand::rng().random_range(0..SEARCH_WORDS.len())];
                let path = format!("/api/products?q={word}");
                client.send(journey, Call::get(LIST, &path)).await?;
            }
            Step::ProductPage => {
                let id = rand::rng().random_range(1..=shop.products.max(1));
                let path = format!("/api/products/{id}");
                client.send(journey, Call::get(PRODUCT, &path)).await?;
            }
            Step::LogIn => {
                // One seeded user per Goose user (or per arrival), so journeys rarely share
                // a cart.
                let index = (shop.first_user + client.user_index() as u32) % shop.users.max(1) + 1;
                *client.session() = Session {
                    email: format!("user{index}@shoplab.test"),
                    token: None,
                };
                log_in(client, shop).await?;
            }
            Step::AddToCart => {
                // A login lost to a fault is tried again here rather than abandoning the
                // journey.
                if client.session().token.is_none() {
                    log_in(client, shop).await?;
                }
                let Some(token) = client.session().token.clone() else {
                    return Ok(());
                };
                let id = rand::rng().random_range(1..=shop.products.max(1));
                let quantity = rand::rng().random_range(1..=3);
                let path = format!("/api/cart/items/{id}");
                let body = serde_json::json!({ "quantity": quantity });
                let call = Call::write(ADD_TO_CART, &path, body).put().bearer(&token);
                client.send(journey, call).await?;
            }
            Step::CheckOutAndRead => {
                let Some(token) = client.session().token.clone() else {
                    return Ok(());
                };
                let key = format!("lab-{:032x}", rand::rng().random::<u128>());
                let call = Call::write(CHECKOUT, "/api/orders", serde_json::json!({}))
                    .bearer(&token)
                    .idempotency_key(&key);
                let answer = client.send(journey, call).await?;
                let Some(order_id) = answer.order_id else {
                    return Ok(());
                };
                let path = format!("/api/orders/{order_id}");
                client
                    .send(journey, Call::get(READ_ORDER, &path).bearer(&token))
                    .await?;
            }
        }
        Ok(())
    }
}

async fn log_in<C: Client>(client: &mut C, shop: &Shopfront) -> Result<(), C::Error> {
    let email = client.session().email.clone();
    let body = serde_json::json!({"email": email, "password": shop.password});
    let answer = client
        .send("buy", Call::write(LOGIN, "/api/sessions", body))
        .await?;
    client.session().token = answer
        .body
        .as_ref()
        .and_then(|body| body["token"].as_str())
        .map(str::to_owned);
    Ok(())
}

/// What sends a step's requests and records them: a Goose user, or an open-loop arrival.
pub trait Client: Send {
    /// What ends a step early (not a failed request: that is recorded and answered).
    type Error: Send;

    /// Sends `call`, records it on the lab's clock as part of `journey`, and returns what
    /// the journey needs from the answer.
    fn send(
        &mut self,
        journey: &str,
        call: Call<'_>,
    ) -> impl Future<Output = Result<Answer, Self::Error>> + Send;

    /// The buy journey's session: who it is logged in as.
    fn session(&mut self) -> &mut Session;

    /// Which seeded user this client runs as (modulo the seeded users).
    fn user_index(&self) -> usize;
}

/// A buy journey's session: who it is logged in as.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub email: String,
    pub token: Option<String>,
}

/// One request of a journey.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    pub name: &'static str,
    pub path: &'a str,
    pub method: Method,
    pub body: Option<Value>,
    pub bearer: Option<String>,
    pub idempotency_key: Option<String>,
}

/// The methods the journeys use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl<'a> Call<'a> {
    pub fn get(name: &'static str, path: &'a str) -> Call<'a> {
        Call {
            name,
            path,
            method: Method::Get,
            body: None,
            bearer: None,
            idempotency_key: None,
        }
    }

    fn write(name: &'static str, path: &'a str, body: Value) -> Call<'a> {
        Call {
            method: Method::Post,
            body: Some(body),
            ..Call::get(name, path)
        }
    }

    fn put(mut self) -> Call<'a> {
        self.method = Method::Put;
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

    /// Whether the body of the answer is parsed (the journey needs something from it).
    pub fn wants_body(&self) -> bool {
        self.name == LOGIN || self.name == CHECKOUT
    }
}

/// What a journey needs back from one request.
#[derive(Debug, Default)]
pub struct Answer {
    pub body: Option<Value>,
    pub order_id: Option<i64>,
}

/// What came back for one call, as both clients see it: the status (0 when no answer came),
/// the body's bytes, and whether the missing answer was a time-out.
pub struct Reply {
    pub status: u16,
    pub bytes: Vec<u8>,
    /// A time-out is a failure that cost the client the whole timeout; the report counts it
    /// apart from fast errors (a refused connection).
    pub timed_out: bool,
}

impl Reply {
    /// No answer: the connection failed, broke off, or timed out.
    pub fn none(error: &reqwest::Error) -> Reply {
        Reply {
            status: 0,
            bytes: Vec::new(),
            timed_out: error.is_timeout(),
        }
    }
}

/// Records `call`'s `reply` and returns what the journey needs from it; written once for
/// both clients. `t_ms` is when the request was due or sent on the recorder's clock;
/// `latency_us` is measured from that moment to the end of the answer's body.
pub fn record(
    recorder: &Recorder,
    journey: &str,
    call: &Call<'_>,
    reply: Reply,
    t_ms: u64,
    latency_us: u64,
    user: Option<&str>,
) -> Answer {
    let status = reply.status;
    let body = (call.wants_body() && status != 0)
        .then(|| serde_json::from_slice::<Value>(&reply.bytes).ok())
        .flatten();
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
        outcome: Outcome::classify(call.method != Method::Get, status),
        timed_out: reply.timed_out,
        idempotency_key: call.idempotency_key.clone(),
        order_id,
        total_cents,
        user: (journey == "buy").then(|| user.unwrap_or_default().to_owned()),
    });
    Answer { body, order_id }
}

/// When the last login among `records` was answered (its due time plus its latency).
pub fn last_login_answered_ms(records: &[RequestRecord]) -> Option<u64> {
    records
        .iter()
        .filter(|record| record.transaction == LOGIN)
        .map(|record| record.t_ms + record.latency_us / 1000)
        .max()
}

/// Collects every request's record on one clock shared with the fault and deploy events.
#[derive(Debug)]
pub struct Recorder {
    epoch: Instant,
    records: Mutex<Records>,
}

/// The records with what is asked of them while they are still coming in, kept up to date
/// as each is pushed: the scale experiment asks every 100 ms when the last login was
/// answered, and rescanning every record under the lock each time would hold up every
/// request's push for longer as the run goes on.
#[derive(Debug, Default)]
struct Records {
    all: Vec<RequestRecord>,
    /// The latest answer to a login pushed so far (due time plus latency), kept across
    /// [`Recorder::take`]: draining the records does not undo the logins.
    last_login_answered_ms: Option<u64>,
}

impl Recorder {
    pub fn new(epoch: Instant) -> Arc<Recorder> {
        Arc::new(Recorder {
            epoch,
            records: Mutex::new(Records {
                all: Vec::with_capacity(64 * 1024),
                last_login_answered_ms: None,
            }),
        })
    }

    /// Milliseconds since the experiment's epoch.
    pub fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// Milliseconds from the experiment's epoch to `instant` (0 before it).
    pub fn ms_at(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn push(&self, record: RequestRecord) {
        let mut records = self.lock();
        if let Some(answered) = last_login_answered_ms(std::slice::from_ref(&record)) {
            records.last_login_answered_ms = records.last_login_answered_ms.max(Some(answered));
        }
        records.all.push(record);
    }

    /// How many requests have been recorded so far.
    pub fn count(&self) -> usize {
        self.lock().all.len()
    }

    /// When the last login recorded so far was answered, on the recorder's clock: a
    /// running maximum, so asking costs nothing however many records there are.
    pub fn last_login_answered_ms(&self) -> Option<u64> {
        self.lock().last_login_answered_ms
    }

    /// Everything recorded so far, in arrival order.
    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut self.lock().all)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(transaction: &str, t_ms: u64, latency_us: u64) -> RequestRecord {
        RequestRecord {
            t_ms,
            journey: "buy".to_owned(),
            transaction: transaction.to_owned(),
            status: 200,
            latency_us,
            outcome: Outcome::Ok,
            timed_out: false,
            idempotency_key: None,
            order_id: None,
            total_cents: None,
            user: None,
        }
    }

    #[test]
    fn the_recorder_knows_the_last_login_answered_without_rescanning_and_after_a_take() {
        let recorder = Recorder::new(Instant::now());
        assert_eq!(recorder.last_login_answered_ms(), None);
        // A slow login due first is answered after a fast one due later.
        let pushed = [
            request(LOGIN, 10, 900_000),
            request(LOGIN, 500, 20_000),
            // Later than either, but not a login.
            request("GET /api/products", 2_000, 1_000),
        ];
        for record in pushed.iter().cloned() {
            recorder.push(record);
        }
        assert_eq!(recorder.last_login_answered_ms(), Some(910));
        assert_eq!(
            recorder.last_login_answered_ms(),
            last_login_answered_ms(&pushed),
            "the running maximum agrees with a scan of the same records"
        );
        assert_eq!(recorder.take().len(), 3);
        assert_eq!(recorder.count(), 0);
        assert_eq!(
            recorder.last_login_answered_ms(),
            Some(910),
            "kept across a take"
        );
        recorder.push(request(LOGIN, 1_000, 5_000));
        assert_eq!(recorder.last_login_answered_ms(), Some(1_005));
    }
}

//! The HTTP vocabulary every case speaks: `Ctx` (a client bound to one target), `Call` (one
//! request being built), `Resp` (status, headers and body, with assertions), and the few
//! shop-level steps most cases share (log in, register, fill a cart, check out, audit).

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use futures::future::BoxFuture;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::Target;
use crate::json::Fields;

/// The seed the harness resets with before every case; seeded users log in with its password.
pub(crate) const SEED: u64 = 7;

/// A client bound to one running target. Cheap to clone; concurrent cases clone it.
#[derive(Clone)]
pub struct Ctx {
    target: Arc<Target>,
    client: reqwest::Client,
}

/// One request being built; `.await` it (or call `send`) to get a `Resp`.
pub struct Call {
    label: String,
    builder: reqwest::RequestBuilder,
    admin_token: String,
    /// A header the case asked for that HTTP cannot carry; reported at send time.
    unsendable: Option<String>,
}

/// A whole answer, read eagerly so assertions can quote the body when they fail.
#[derive(Clone, Debug)]
pub struct Resp {
    /// `METHOD path`, quoted in failure messages.
    pub label: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON, `Value::Null` when it is not JSON.
    pub json: Value,
}

/// A user registered by a case, logged in.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl Ctx {
    pub fn new(target: Target) -> Result<Ctx> {
        // A generous timeout: a hung server must fail the case, not the whole run.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("build the http client")?;
        Ok(Ctx {
            target: Arc::new(target),
            client,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn request(&self, method: Method, path: &str) -> Call {
        let base = if path.starts_with("/admin") {
            &self.target.admin_url
        } else {
            &self.target.base_url
        };
        let url = format!("{}{path}", base.trim_end_matches('/'));
        Call {
            label: format!("{method} {path}"),
            builder: self.client.request(method, url),
            admin_token: self.target.admin_token.clone(),
            unsendable: None,
        }
    }

    pub fn get(&self, path: &str) -> Call {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str, body: Value) -> Call {
        self.request(Method::POST, path).json(&body)
    }

    pub fn put(&self, path: &str, body: Value) -> Call {
        self.request(Method::PUT, path).json(&body)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.request(Method::DELETE, path)
    }

    /// `POST /admin/reset` with `body`; returns the summary.
    pub async fn reset(&self, body: Value) -> Result<Value> {
        let resp = self.post("/admin/reset", body).admin().await?;
        Ok(resp.expect(200)?.clone())
    }

    /// Logs in and returns the bearer token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String> {
        let resp = self
            .post(
                "/api/sessions",
                json!({"email": email, "password": password}),
            )
            .await?;
        Ok(resp.expect(200)?.str_at("token")?.to_owned())
    }

    /// Logs in as seeded user `index` (1-based) of the harness's default reset.
    pub async fn login_seeded(&self, index: u32) -> Result<String> {
        self.login(
            &domain::seed::seed_user_email(index),
            &domain::seed::seed_user_password(SEED),
        )
        .await
    }

    /// The user id behind a seeded user's token, read from the session answer.
    pub async fn seeded_user_id(&self, index: u32) -> Result<i64> {
        let resp = self
            .post(
                "/api/sessions",
                json!({
                    "email": domain::seed::seed_user_email(index),
                    "password": domain::seed::seed_user_password(SEED),
                }),
            )
            .await?;
        resp.expect(200)?.i64_at("user_id")
    }

    /// Registers a user with a unique email and logs them in.
    pub async fn register_user(&self) -> Result<User> {
        let email = format!("buyer-{}@example.test", unique_suffix());
        let password = "correct horse battery".to_owned();
        let resp = self
            .post(
                "/api/users",
                json!({"email": email, "password": password, "name": "Buyer"}),
            )
            .await?;
        let id = resp.expect(201)?.i64_at("id")?;
        let token = self.login(&email, &password).await?;
        Ok(User {
            id,
            email,
            password,
            token,
        })
    }

    pub async fn product(&self, id: i64) -> Result<Value> {
        Ok(self
            .get(&format!("/api/products/{id}"))
            .await?
            .expect(200)?
            .clone())
    }

    /// Every product, read page by page.
    pub async fn all_products(&self) -> Result<Vec<Value>> {
        let mut products = Vec::new();
        for page in 1.. {
            let resp = self
                .get(&format!("/api/products?per_page=100&page={page}"))
                .await?;
            let items = resp.expect(200)?.array_at("items")?.to_vec();
            if items.is_empty() {
                break;
            }
            products.extend(items);
        }
        Ok(products)
    }

    /// Sets a cart line and expects 200; returns the cart.
    pub async fn put_in_cart(&self, token: &str, product_id: i64, quantity: i64) -> Result<Value> {
        let resp = self
            .put(
                &format!("/api/cart/items/{product_id}"),
                json!({"quantity": quantity}),
            )
            .token(token)
            .await?;
        Ok(resp.expect(200)?.clone())
    }

    pub async fn cart(&self, token: &str) -> Result<Value> {
        Ok(self
            .get("/api/cart")
            .token(token)
            .await?
            .expect(200)?
            .clone())
    }

    /// `POST /api/orders` with body `{}` and the given key; returns the answer unchecked.
    pub async fn checkout(&self, token: &str, key: &str) -> Result<Resp> {
        self.post("/api/orders", json!({}))
            .token(token)
            .idempotency_key(key)
            .await
    }

    pub async fn orders(&self, token: &str) -> Result<Vec<Value>> {
        let resp = self.get("/api/orders").token(token).await?;
        Ok(resp.expect(200)?.array_at("items")?.to_vec())
    }

    pub async fn audit(&self) -> Result<Value> {
        Ok(self.get("/admin/audit").admin().await?.expect(200)?.clone())
    }

    /// A token for `user_id` signed with the target's secret that expired a minute ago.
    pub fn expired_token(&self, user_id: i64) -> Result<String> {
        let keys = domain::tokens::TokenKeys::new(self.target.token_secret.as_bytes(), 3600);
        let expired_at = domain::now_ms() / 1000 - 60;
        Ok(keys.issue_expiring_at(user_id, expired_at)?.token)
    }

    /// A well-formed, unexpired token for `user_id` signed with the wrong secret.
    pub fn forged_token(&self, user_id: i64) -> Result<String> {
        let keys = domain::tokens::TokenKeys::new(b"not-the-target-secret", 3600);
        Ok(keys.issue(user_id)?.token)
    }
}

impl Call {
    pub fn token(self, token: &str) -> Call {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Authenticates with the target's admin token.
    pub fn admin(self) -> Call {
        let token = self.admin_token.clone();
        self.token(&token)
    }

    pub fn idempotency_key(self, key: &str) -> Call {
        self.header("idempotency-key", key)
    }

    pub fn header(self, name: &str, value: &str) -> Call {
        self.header_bytes(name, value.as_bytes())
    }

    /// A header from raw bytes, so cases can send values no well-behaved client would.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Call {
        match HeaderValue::from_bytes(value) {
            Ok(value) => self.builder = self.builder.header(name, value),
            // Bytes HTTP itself cannot carry (CR, LF, NUL) never reach a server; the case
            // that built them is wrong, so fail it loudly at send time.
            Err(_) => self.unsendable = Some(name.to_owned()),
        }
        self
    }

    pub fn json(mut self, body: &Value) -> Call {
        self.label = format!("{} {}", self.label, snippet_of(&body.to_string(), 120));
        self.builder = self.builder.json(body);
        self
    }

    /// A body sent byte for byte, with a `Content-Type` only when one is given.
    pub fn raw_body(mut self, body: impl Into<Vec<u8>>, content_type: Option<&str>) -> Call {
        let body = body.into();
        let shown = snippet_of(&String::from_utf8_lossy(&body), 120);
        self.label = format!("{} {shown:?} ({} bytes)", self.label, body.len());
        self.builder = self.builder.body(body);
        if let Some(content_type) = content_type {
            self.builder = self.builder.header("content-type", content_type);
        }
        self
    }

    pub async fn send(self) -> Result<Resp> {
        if let Some(name) = self.unsendable {
            bail!("{}: the case built an unsendable {name} header", self.label);
        }
        let response = self
            .builder
            .send()
            .await
            .with_context(|| format!("{} failed", self.label))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .with_context(|| format!("{} body could not be read", self.label))?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            label: self.label,
            status,
            headers,
            text,
            json,
        })
    }
}

impl IntoFuture for Call {
    type Output = Result<Resp>;
    type IntoFuture = BoxFuture<'static, Result<Resp>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl Resp {
    /// Checks the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Result<&Value> {
        ensure!(
            self.status == status,
            "{}: expected {status}, got {}: {}",
            self.label,
            self.status,
            snippet(&self.text)
        );
        Ok(&self.json)
    }

    /// Checks the status and the error body `{"error":{"code","message"}}`.
    pub fn expect_error(&self, status: u16, code: &str) -> Result<()> {
        self.expect(status)?;
        let error = self
            .json
            .field("error")
            .with_context(|| format!("{}: no error body in {}", self.label, snippet(&self.text)))?;
        let got = error.str_at("code")?;
        ensure!(
            got == code,
            "{}: expected error code {code:?}, got {got:?}",
            self.label
        );
        ensure!(
            !error.str_at("message")?.is_empty(),
            "{}: the error message is empty",
            self.label
        );
        Ok(())
    }

    /// Bad input may be refused, never crash the server.
    pub fn expect_client_error(&self) -> Result<()> {
        ensure!(
            (400..500).contains(&self.status),
            "{}: expected a 4xx, got {}: {}",
            self.label,
            self.status,
            snippet(&self.text)
        );
        Ok(())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// The stock row of one product in an audit.
pub(crate) fn stock_row(audit: &Value, product_id: i64) -> Result<&Value> {
    for row in audit.array_at("stock")? {
        if row.i64_at("product_id")? == product_id {
            return Ok(row);
        }
    }
    bail!("no stock row for product {product_id} in the audit")
}

/// A path with a properly encoded query string.
pub(crate) fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://query.invalid/").expect("a constant url parses");
    url.set_path(path);
    url.query_pairs_mut().extend_pairs(pairs);
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A suffix no other case of this run (or of an earlier run against the same deployment)
/// has used: the clock, the process and a counter.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}{:x}{count:x}", std::process::id())
}

/// Runs several requests at once and returns their answers in order.
pub(crate) async fn all<F>(calls: Vec<F>) -> Result<Vec<Resp>>
where
    F: Future<Output = Result<Resp>>,
{
    futures::future::join_all(calls).await.into_iter().collect()
}

fn snippet(text: &str) -> String {
    snippet_of(text, 400)
}

fn snippet_of(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max_chars).collect::<String>())
    }
}

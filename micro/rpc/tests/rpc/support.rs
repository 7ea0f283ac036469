//! Upstreams to call: a catalog + inventory service over SQLite (`start_service`) whose
//! faults a test switches on as the admin API does, and a stub whose answers a test switches
//! (`Stub`), counting the calls it gets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::catalog::Product;
use domain::faults::{FaultRequest, Faults};
use domain::{Context, DomainError};
use micro_rpc::{Upstream, UpstreamSettings};
use store::catalog::SqlCatalog;
use store::inventory::SqlInventory;
use store::{Db, DbOptions};
use tokio::net::TcpListener;

/// How long any "eventually" in these tests may take before it is a failure.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A catalog + inventory service on a random port over a fresh SQLite file with two products
/// (one unit of stock each).
pub struct Service {
    pub base_url: String,
    /// The service's fault registry, what `POST /admin/faults` switches.
    pub faults: Faults,
    _data: tempfile::TempDir,
}

pub async fn start_service() -> Service {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("service.db").display());
    let options = DbOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
    };
    let db = Db::connect(&url, &options).await.unwrap();
    db.migrate(&[Context::Catalog, Context::Inventory])
        .await
        .unwrap();
    let products: Vec<Product> = (1..=2).map(product).collect();
    let mut connection = db.writer().acquire().await.unwrap();
    store::catalog::seed_in(&mut connection, &products)
        .await
        .unwrap();
    store::inventory::seed_in(&mut connection, &[1, 2], 1)
        .await
        .unwrap();
    drop(connection);
    let faults = Faults::new();
    // The deadline half of the layer `micro_kit::serve` mounts on every context's routes;
    // these tests are about the hop, not about who makes it (that is `trust.rs`).
    let router = micro_rpc::catalog::routes(Arc::new(SqlCatalog::new(db.clone(), faults.clone())))
        .merge(micro_rpc::inventory::routes(Arc::new(SqlInventory::new(
            db,
            faults.clone(),
        ))))
        .layer(axum::middleware::from_fn(micro_rpc::deadline::layer));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Service {
        base_url,
        faults,
        _data: data,
    }
}

impl Service {
    /// Switches on the `errors` fault for `context` at `rate`, with the admin API's body.
    pub fn fail_at(&self, context: &str, rate: f64) {
        let request: FaultRequest = serde_json::from_value(serde_json::json!({
            "context": context,
            "kind": "errors",
            "params": { "rate": rate },
        }))
        .unwrap();
        self.faults.inject(&request).unwrap();
    }

    pub fn heal(&self) {
        self.faults.clear(None);
    }
}

pub fn product(id: i64) -> Product {
    Product {
        id,
        sku: format!("SKU-{id}"),
        name: format!("Thing {id}"),
        description: String::new(),
        category: "tools".into(),
        price_cents: 100,
    }
}

/// An address nothing listens on: bound, then released.
pub async fn dead_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// Settings for tests: the defaults with `retries` set, everything else as shipped.
pub fn settings(retries: u32) -> UpstreamSettings {
    UpstreamSettings {
        retries,
        ..UpstreamSettings::default()
    }
}

pub fn upstream(context: Context, replicas: Vec<String>, retries: u32) -> Upstream {
    Upstream::new(context, replicas, settings(retries))
}

/// What the stub answers to every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200: a product for a GET, `null` for anything else.
    Healthy = 0,
    /// 500 with a plain-text body: a crashed handler or a proxy, not the shop's answer.
    Broken = 1,
    /// 404 with the shop's error body.
    NotFound = 2,
    /// 422 with the shop's error body.
    Invalid = 3,
    /// 503 with the shop's error body: the service says it cannot serve.
    Unavailable = 4,
    /// No answer for a minute: a hung process.
    Hang = 5,
}

/// A switchable upstream on a fixed address that can be shut down and started again.
pub struct Stub {
    pub address: SocketAddr,
    pub base_url: String,
    state: Arc<StubState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct StubState {
    mode: AtomicU8,
    hits: AtomicUsize,
    traceparents: Mutex<Vec<String>>,
    deadlines: Mutex<Vec<String>>,
}

impl Stub {
    pub async fn start(mode: Mode) -> Stub {
        Stub::start_at(mode, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// On `address` (port 0 picks one).
    pub async fn start_at(mode: Mode, address: SocketAddr) -> Stub {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(StubState::default());
        state.mode.store(mode as u8, Ordering::SeqCst);
        let mut stub = Stub {
            address,
            base_url: format!("http://{address}"),
            state,
            stop: None,
            served: None,
        };
        stub.serve(listener);
        stub
    }

    fn serve(&mut self, listener: TcpListener) {
        let router = axum::Router::new()
            .fallback(answer)
            .with_state(self.state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.served = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        }));
    }

    pub fn set(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Calls that reached this stub so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn traceparents(&self) -> Vec<String> {
        self.state.traceparents.lock().unwrap().clone()
    }

    /// The `x-shoplab-deadline-ms` values the calls carried, in order.
    pub fn deadlines(&self) -> Vec<String> {
        self.state.deadlines.lock().unwrap().clone()
    }

    /// Stops listening and closes every connection, as a process that exits would.
    pub async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(DEADLINE, served)
                .await
                .expect("the stub shuts down in time")
                .unwrap();
        }
    }

    /// Listens again on the same address (a restarted process).
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}

async fn answer(State(state): State<Arc<StubState>>, request: Request) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(value) = request.headers().get("traceparent") {
        let value = value.to_str().unwrap_or_default().to_owned();
        state.traceparents.lock().unwrap().push(value);
    }
    if let Some(value) = request.headers().get(micro_rpc::deadline::DEADLINE_HEADER) {
        let value = value.to_str().unwrap_or_default().to_owned();
        state.deadlines.lock().unwrap().push(value);
    }
    let mode = state.mode.load(Ordering::SeqCst);
    if mode == Mode::Hang as u8 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if mode == Mode::Unavailable as u8 {
        shop_error(DomainError::Unavailable("injected fault in catalog".into()))
    } else if mode == Mode::Broken as u8 {
        (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response()
    } else if mode == Mode::NotFound as u8 {
        shop_error(DomainError::NotFound("product 1 not found".into()))
    } else if mode == Mode::Invalid as u8 {
        shop_error(DomainError::Invalid("quantity must be positive".into()))
    } else if request.method() == axum::http::Method::GET {
        Json(product(1)).into_response()
    } else {
        Json(()).into_response()
    }
}

fn shop_error(error: DomainError) -> Response {
    api::ApiError(error).into_response()
}

/// Polls `condition` until it holds; panics with `what` after `deadline`.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        // A poll interval, not a stand-in for readiness: the condition decides.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The value of one series in `text` (Prometheus text format), 0 when absent.
pub fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

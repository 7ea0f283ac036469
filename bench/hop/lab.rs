//! The hop benchmark's lab: one catalog service and one bare axum route on a runtime of their
//! own, the catalog's store in-process beside them, and the clients that call them. Shared by
//! `benches/hop.rs` (criterion: time per call) and `examples/hop-instructions.rs` (callgrind:
//! instructions per call), so both measure the very same calls.
//!
//! Fairness: the services run on a runtime of their own (one worker thread, as a service
//! process pinned to one core would), the caller on a current-thread runtime, so a hop
//! crosses threads as it crosses processes in the micro build. Both databases are fresh
//! files in one temp dir, seeded with the same seed and product count, and ids walk 1..=1000
//! in the same order in every variant, so every variant reads the same rows.

// Each includer uses its own part of the lab.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::Context;
use domain::catalog::{Catalog, Product, ProductId, ProductPage, ProductQuery};
use domain::trust::{Keyring, Peer};
use micro_rpc::Upstream;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::upstream::Idempotency;
use store::catalog::SqlCatalog;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The seed and catalogue size `shoplab serve ... --seed 42` uses.
pub const SEED: u64 = 42;
pub const PRODUCTS: i64 = 1000;

/// Product ids 1..=1000, round and round.
pub fn product_ids() -> impl Iterator<Item = ProductId> {
    (1..=PRODUCTS).cycle()
}

/// Everything the variants call, started once.
pub struct Lab {
    /// Criterion's runtime: the caller's side of every call.
    pub caller: Runtime,
    /// The runtime the catalog service and the hello server run on.
    pub services: Runtime,
    pub in_process: Arc<dyn Catalog>,
    pub over_http: Arc<dyn Catalog>,
    /// The transport floor's clients: the catalog client's kind of `Upstream`, pointed at
    /// each hello server, in the order of [`Hello::ALL`].
    pub hello: Vec<Upstream>,
    /// Every product, for the JSON-only variant to encode.
    pub products: Vec<Product>,
    pub first_page: ProductPage,
    /// The key pairs of this lab's catalog service and of the gateway it plays.
    pub keyring: Keyring,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl Lab {
    pub fn start() -> Lab {
        let data = tempfile::tempdir().expect("a temp dir");
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the caller's runtime");
        let services = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the services' runtime");
        let mut stop = Vec::new();
        let keyring = Keyring::generate();

        // (1) Opened and seeded by the kit exactly as the catalog service opens its own
        // database, then the same `SqlCatalog` the service and the monolith mount.
        let in_process: Arc<dyn Catalog> = caller.block_on(async {
            let service = micro_kit::Service::open(
                Context::Catalog,
                settings(&data, "in-process.db", &keyring),
            )
            .await
            .expect("the in-process catalog opens and seeds");
            Arc::new(SqlCatalog::new(service.db.clone(), service.faults.clone()))
        });

        // (3) The catalog service itself, on its own file seeded with the same seed.
        let (catalog_url, stopper) = services.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let url = format!("http://{}", listener.local_addr().expect("an address"));
            let (stopper, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            tokio::spawn(micro_catalog::serve(
                settings(&data, "catalog.db", &keyring),
                listener,
                shutdown,
            ));
            (url, stopper)
        });
        stop.push(stopper);

        // (4) A bare axum route: no layers, no state, a constant JSON answer; and the same
        // route on the shop's own server (`api::server::serve`: its connection limits), and
        // on that server with the layers every shop process wears (`api::server::finish`),
        // which split what a service's hop adds beyond the bare one into its parts.
        let mut hello_urls = Vec::new();
        for server in [Hello::Axum, Hello::ShopServer, Hello::ShopLayers] {
            let (url, stopper) = services.block_on(serve_hello(server));
            hello_urls.push(url);
            stop.push(stopper);
        }

        let (over_http, hello, products, first_page) = caller.block_on(async {
            wait_ready(&format!("{catalog_url}/ready")).await;
            for url in &hello_urls {
                wait_ready(&format!("{url}/hello")).await;
            }
            let over_http: Arc<dyn Catalog> =
                Arc::new(CatalogClient(upstream_to(&catalog_url, &keyring)));
            let hello = hello_urls
                .iter()
                .map(|url| upstream_to(url, &keyring))
                .collect();
            let ids: Vec<ProductId> = product_ids().take(PRODUCTS as usize).collect();
            let mut products = in_process.get_many(&ids).await.expect("every product");
            products.sort_by_key(|product| product.id);
            assert_eq!(
                products.len(),
                PRODUCTS as usize,
                "the seed made every product"
            );
            let filter = ProductQuery::default().validate().expect("a valid filter");
            let first_page = in_process.list(&filter).await.expect("the first page");
            // Both sides serve the same rows, or the comparison means nothing.
            assert_eq!(over_http.get(7).await.expect("product 7"), products[6]);
            assert_eq!(over_http.list(&filter).await.expect("a page"), first_page);
            (over_http, hello, products, first_page)
        });

        Lab {
            caller,
            services,
            in_process,
            over_http,
            hello,
            products,
            first_page,
            keyring,
            stop,
            _data: data,
        }
    }

    /// The client of one hello server.
    pub fn hello_client(&self, server: Hello) -> Upstream {
        self.hello[server as usize].clone()
    }

    /// One call of the transport floor: the bare route through the catalog's kind of client.
    pub async fn hello(hello: Upstream) -> String {
        hello
            .call::<String>(
                reqwest::Method::GET,
                "/hello",
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await
            .expect("hello answers")
    }

    pub fn stop(self) {
        for stopper in self.stop {
            let _ = stopper.send(());
        }
        self.services.shutdown_timeout(Duration::from_secs(5));
    }
}

/// A catalog service's settings over `file` in the temp dir, seeded as `--seed 42` does.
/// Everything else is the default every service runs with (pool sizes, hop budget, body
/// limit); a token is set only so the kit does not print a generated one, and the catalog's
/// own service key, as every service is given one.
fn settings(data: &tempfile::TempDir, file: &str, keyring: &Keyring) -> api::Settings {
    let catalog = Peer::Service(Context::Catalog);
    api::Settings {
        db: format!("sqlite://{}", data.path().join(file).display()),
        admin_token: Some("bench".to_owned()),
        service_key: Some(keyring.private_key(catalog).to_owned()),
        service_public_keys: Some(keyring.public_keys()),
        seed: Some(SEED),
        ..api::Settings::default()
    }
}

/// The client of one context as the gateway builds it from its settings (`--upstream
/// catalog=URL`, default hop budget, retries and resilience settings), reporting into hop
/// metrics of its own as the gateway's clients report into the gateway's registry, and
/// signed with the gateway's key as the gateway's are.
fn upstream_to(url: &str, keyring: &Keyring) -> Upstream {
    let mut settings = api::Settings::default();
    settings
        .upstreams
        .insert(Context::Catalog.as_str().to_owned(), vec![url.to_owned()]);
    let directory = micro_rpc::Directory::new(&settings.upstreams);
    let metrics = api::metrics::HopMetrics::default();
    let gateway = Arc::new(keyring.identity(Peer::Gateway));
    micro_kit::upstream(&settings, Context::Catalog, &directory, &metrics, &gateway)
        .expect("a catalog upstream")
}

/// Polls `url` until it answers 200, for at most 30 s.
async fn wait_ready(url: &str) {
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http.get(url).send().await;
        if answer.is_ok_and(|response| response.status().is_success()) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{url} did not answer 200 within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The servers the hello route runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hello {
    /// `axum::serve` and the bare route: the transport floor.
    Axum = 0,
    /// The shop's server (`api::server::serve`, with its timeouts and connection cap).
    ShopServer = 1,
    /// The shop's server and the layers every shop process wears (`api::server::finish`:
    /// tracing, the body limit, metrics by route).
    ShopLayers = 2,
}

impl Hello {
    pub const ALL: [Hello; 3] = [Hello::Axum, Hello::ShopServer, Hello::ShopLayers];

    pub fn name(self) -> &'static str {
        match self {
            Hello::Axum => "axum_hello",
            Hello::ShopServer => "shop_server_hello",
            Hello::ShopLayers => "shop_layers_hello",
        }
    }
}

/// Starts the hello route on `server`; its base URL and what stops it.
async fn serve_hello(server: Hello) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let (stopper, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let router = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { axum::Json("hello") }),
    );
    match server {
        Hello::Axum => {
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
            });
        }
        Hello::ShopServer | Hello::ShopLayers => {
            let router = if server == Hello::ShopLayers {
                let metrics = api::metrics::Metrics::new();
                api::server::finish(router, &metrics, api::Settings::default().body_limit_bytes)
            } else {
                router
            };
            let limits = api::server::Limits::default();
            tokio::spawn(api::server::serve(listener, router, stopped, limits));
        }
    }
    (url, stopper)
}

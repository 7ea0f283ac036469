//! The hop tax, split into its parts: the same domain operation (`Catalog::get` of one
//! product, and `Catalog::list` of the first page) measured
//!
//! 1. `in_process`: as the monolith makes it, a trait call on `store::catalog::SqlCatalog`
//!    over a SQLite file seeded the way the catalog service seeds itself;
//! 2. `json_only`: only the JSON the internal API puts on the wire for that call — the request
//!    body (none for `get`, the filter for `list`) and the response body, each encoded and
//!    decoded once with serde_json, no I/O;
//! 3. `http_loopback`: as the gateway makes it, through `micro_rpc::catalog::CatalogClient` (the
//!    real client behind the `Catalog` trait, built by `micro_kit::upstream` from settings as
//!    the gateway builds it) over loopback to the real catalog service (`micro_catalog::serve`:
//!    the kit's router with its metrics, tracing and body-limit layers over its own SQLite file,
//!    seeded with the same seed);
//! 4. `transport_floor/axum_hello`: the same client calling a bare axum route that answers a
//!    JSON string, no layers and no database — what any hop costs before the shop adds to it;
//! 5. `service_token`: what the services' authentication adds to (3), which carries it: the
//!    caller's cached token (`token_for`, once per call), the callee's check of a token it
//!    has verified before (`verify`, every other call), the signature check of a new one
//!    (`verify_signature`, once per caller and token) and a fresh signature (`sign`, once per
//!    callee per half-minute).
//!
//! The added latency of one hop is (3) - (1); (2) and (4) say how much of it is encoding and
//! how much is the transport, (5) how much is proving and checking who calls. `bench/hop-tax.sh` runs this and writes the results file.
//!
//! Fairness: the services run on a runtime of their own (one worker thread, as a service
//! process pinned to one core would), the caller on criterion's current-thread runtime, so a
//! hop crosses threads as it crosses processes in the micro build. Both databases are fresh
//! files in one temp dir, seeded with the same seed and product count, and ids walk 1..=1000
//! in the same order in every variant, so every variant reads the same rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use domain::Context;
use domain::catalog::{Catalog, Product, ProductFilter, ProductId, ProductPage, ProductQuery};
use domain::trust::{Keyring, Peer};
use micro_rpc::Upstream;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::upstream::Idempotency;
use store::catalog::SqlCatalog;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The seed and catalogue size `shoplab serve ... --seed 42` uses.
const SEED: u64 = 42;
const PRODUCTS: i64 = 1000;

fn hop_tax(criterion: &mut Criterion) {
    let lab = Lab::start();
    let filter = ProductQuery::default()
        .validate()
        .expect("the default listing is valid");

    let mut group = criterion.benchmark_group("catalog_get");
    group.bench_function("in_process", |bencher| {
        let mut ids = product_ids();
        bencher.to_async(&lab.caller).iter(|| {
            let id = ids.next().unwrap_or(1);
            let catalog = lab.in_process.clone();
            async move { catalog.get(id).await.expect("the product exists") }
        });
    });
    group.bench_function("json_only", |bencher| {
        let mut ids = product_ids();
        bencher.iter(|| {
            // `get` sends no body: the id travels in the path.
            let product = &lab.products[(ids.next().unwrap_or(1) - 1) as usize];
            let body = serde_json::to_vec(product).expect("a product encodes");
            serde_json::from_slice::<Product>(&body).expect("a product decodes")
        });
    });
    group.bench_function("http_loopback", |bencher| {
        let mut ids = product_ids();
        bencher.to_async(&lab.caller).iter(|| {
            let id = ids.next().unwrap_or(1);
            let catalog = lab.over_http.clone();
            async move { catalog.get(id).await.expect("the product exists") }
        });
    });
    group.finish();

    let mut group = criterion.benchmark_group("catalog_list");
    group.bench_function("in_process", |bencher| {
        bencher.to_async(&lab.caller).iter(|| {
            let (catalog, filter) = (lab.in_process.clone(), filter.clone());
            async move { catalog.list(&filter).await.expect("the first page") }
        });
    });
    group.bench_function("json_only", |bencher| {
        bencher.iter(|| {
            let request = serde_json::to_vec(&filter).expect("a filter encodes");
            let _: ProductFilter = serde_json::from_slice(&request).expect("a filter decodes");
            let response = serde_json::to_vec(&lab.first_page).expect("a page encodes");
            serde_json::from_slice::<ProductPage>(&response).expect("a page decodes")
        });
    });
    group.bench_function("http_loopback", |bencher| {
        bencher.to_async(&lab.caller).iter(|| {
            let (catalog, filter) = (lab.over_http.clone(), filter.clone());
            async move { catalog.list(&filter).await.expect("the first page") }
        });
    });
    group.finish();

    let mut group = criterion.benchmark_group("service_token");
    let catalog = Peer::Service(Context::Catalog);
    let gateway = lab.keyring.identity(Peer::Gateway);
    let callee = lab.keyring.identity(catalog);
    group.bench_function("token_for", |bencher| {
        bencher.iter(|| gateway.token_for(catalog).expect("a token"));
    });
    let token = gateway.token_for(catalog).expect("a token");
    group.bench_function("verify", |bencher| {
        bencher.iter(|| callee.verify(&token).expect("the token verifies"));
    });
    group.bench_function("verify_signature", |bencher| {
        // A callee that has not seen the token yet, made outside the measured part: the
        // signature check every caller's first call with a new token pays.
        bencher.iter_batched(
            || lab.keyring.identity(catalog),
            |fresh| fresh.verify(&token).expect("the token verifies"),
            criterion::BatchSize::SmallInput,
        );
    });
    let now = domain::now_ms() / 1000;
    group.bench_function("sign", |bencher| {
        bencher.iter(|| gateway.issue(catalog, now, now + 60).expect("a token"));
    });
    group.finish();

    let mut group = criterion.benchmark_group("transport_floor");
    group.bench_function("axum_hello", |bencher| {
        bencher.to_async(&lab.caller).iter(|| {
            let hello = lab.hello.clone();
            async move {
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
        });
    });
    group.finish();

    lab.stop();
}

criterion_group!(benches, hop_tax);
criterion_main!(benches);

/// Product ids 1..=1000, round and round.
fn product_ids() -> impl Iterator<Item = ProductId> {
    (1..=PRODUCTS).cycle()
}

/// Everything the variants call, started once.
struct Lab {
    /// Criterion's runtime: the caller's side of every call.
    caller: Runtime,
    /// The runtime the catalog service and the hello server run on.
    services: Runtime,
    in_process: Arc<dyn Catalog>,
    over_http: Arc<dyn Catalog>,
    /// The transport floor's client: the catalog client's `Upstream`, pointed at hello.
    hello: Upstream,
    /// Every product, for the JSON-only variant to encode.
    products: Vec<Product>,
    first_page: ProductPage,
    /// The key pairs of this lab's catalog service and of the gateway it plays.
    keyring: Keyring,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
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

        // (4) A bare axum route: no layers, no state, a constant JSON answer.
        let (hello_url, stopper) = services.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let url = format!("http://{}", listener.local_addr().expect("an address"));
            let (stopper, stopped) = tokio::sync::oneshot::channel::<()>();
            let router = axum::Router::new().route(
                "/hello",
                axum::routing::get(|| async { axum::Json("hello") }),
            );
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
            });
            (url, stopper)
        });
        stop.push(stopper);

        let (over_http, hello, products, first_page) = caller.block_on(async {
            wait_ready(&format!("{catalog_url}/ready")).await;
            wait_ready(&format!("{hello_url}/hello")).await;
            let over_http: Arc<dyn Catalog> =
                Arc::new(CatalogClient(upstream_to(&catalog_url, &keyring)));
            let hello = upstream_to(&hello_url, &keyring);
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

    fn stop(self) {
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

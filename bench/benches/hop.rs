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
//! The lab they run in (and why it is fair) is `bench/hop/lab.rs`, shared with
//! `examples/hop-instructions.rs`, which counts the instructions of the same calls.

#[path = "../hop/lab.rs"]
mod lab;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::Context;
use domain::catalog::{Product, ProductFilter, ProductPage, ProductQuery};
use domain::trust::Peer;
use lab::{Hello, Lab, product_ids};

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
    for server in Hello::ALL {
        group.bench_function(server.name(), |bencher| {
            bencher
                .to_async(&lab.caller)
                .iter(|| Lab::hello(lab.hello_client(server)));
        });
    }
    group.finish();

    lab.stop();
}

criterion_group!(benches, hop_tax);
criterion_main!(benches);

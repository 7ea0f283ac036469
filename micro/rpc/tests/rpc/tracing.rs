//! W3C `traceparent` across a hop: a server takes the caller's trace (or starts one) and
//! every call its handlers make continues it, with the same trace id and a new parent id.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use domain::Context;
use domain::catalog::Catalog;
use micro_rpc::catalog::CatalogClient;

use crate::support::{Mode, Stub, upstream};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A shop server (the common layers of every process) whose one route calls the catalog
/// upstream; returns its base URL.
async fn relay_to(stub: &Stub) -> String {
    let catalog = Arc::new(CatalogClient(upstream(
        Context::Catalog,
        vec![stub.base_url.clone()],
        0,
    )));
    let router = axum::Router::new()
        .route(
            "/relay",
            get(|State(catalog): State<Arc<CatalogClient>>| async move {
                catalog
                    .get(1)
                    .await
                    .map(|product| product.name)
                    .unwrap_or_default()
            }),
        )
        .with_state(catalog);
    let metrics = api::metrics::Metrics::new();
    let router = api::server::finish(router, &metrics, 64 * 1024);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base_url
}

/// `(trace id, parent id)` of a `traceparent` value.
fn parts(header: &str) -> (String, String) {
    let fields: Vec<&str> = header.split('-').collect();
    assert_eq!(fields.len(), 4, "{header}");
    (fields[1].to_owned(), fields[2].to_owned())
}

#[tokio::test]
async fn a_traceparent_sent_in_reaches_the_upstream_with_the_same_trace_id_and_a_new_parent() {
    let stub = Stub::start(Mode::Healthy).await;
    let relay = relay_to(&stub).await;
    let response = reqwest::Client::new()
        .get(format!("{relay}/relay"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Thing 1");

    let seen = stub.traceparents();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (trace_id, parent_id) = parts(&seen[0]);
    assert_eq!(trace_id, TRACE_ID, "the trace continues across the hop");
    assert_ne!(parent_id, PARENT_ID, "the hop is a new span");
    assert_ne!(parent_id, "0000000000000000");
    assert!(
        seen[0].starts_with("00-") && seen[0].ends_with("-01"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_request_without_traceparent_starts_a_trace_that_its_hops_continue() {
    let stub = Stub::start(Mode::Healthy).await;
    let relay = relay_to(&stub).await;
    let response = reqwest::Client::new()
        .get(format!("{relay}/relay"))
        .send()
        .await
        .unwrap();
    let echoed = response
        .headers()
        .get("traceparent")
        .expect("the server names the trace it started")
        .to_str()
        .unwrap()
        .to_owned();
    let (started, _) = parts(&echoed);
    let seen = stub.traceparents();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(parts(&seen[0]).0, started);
    assert_ne!(started, "00000000000000000000000000000000");
}

#[tokio::test]
async fn a_call_outside_any_request_starts_a_trace_per_call() {
    let stub = Stub::start(Mode::Healthy).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 0));
    catalog.get(1).await.unwrap();
    catalog.get(1).await.unwrap();
    let seen = stub.traceparents();
    assert_eq!(seen.len(), 2);
    assert_ne!(parts(&seen[0]).0, parts(&seen[1]).0);
}

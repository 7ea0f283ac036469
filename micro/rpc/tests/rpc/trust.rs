//! Zero trust on the hop: the real `inbound` layer and the routes' callers' rules, with
//! clients signing as the gateway, as orders, or not at all.

use std::sync::Arc;
use std::time::Duration;

use domain::inventory::{Inventory, StockLine};
use domain::trust::{Keyring, Peer};
use domain::{Context, DomainError};
use micro_rpc::inventory::InventoryClient;
use micro_rpc::trust::SERVICE_TOKEN_HEADER;
use store::inventory::SqlInventory;
use store::{Db, DbOptions};
use tokio::net::TcpListener;

use crate::support::upstream;

/// Inventory's routes behind the layer `micro-kit` mounts, over a fresh database holding one
/// unit of product 1; its base URL and the deployment's keys.
async fn inventory_service() -> (String, Keyring, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("inventory.db").display());
    let options = DbOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
    };
    let db = Db::connect(&url, &options).await.unwrap();
    db.migrate(&[Context::Inventory]).await.unwrap();
    let mut connection = db.writer().acquire().await.unwrap();
    store::inventory::seed_in(&mut connection, &[1], 1)
        .await
        .unwrap();
    drop(connection);
    let keys = Keyring::generate();
    let identity = Arc::new(keys.identity(Peer::Service(Context::Inventory)));
    let inventory = Arc::new(SqlInventory::new(db, domain::faults::Faults::new()));
    let router = micro_rpc::inventory::routes(inventory).route_layer(
        axum::middleware::from_fn_with_state(identity, micro_rpc::inbound),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base_url, keys, data)
}

fn client(base_url: &str, keys: Option<(&Keyring, Peer)>) -> InventoryClient {
    let upstream = upstream(Context::Inventory, vec![base_url.to_owned()], 0);
    InventoryClient(match keys {
        Some((keys, peer)) => upstream.signed_by(Arc::new(keys.identity(peer))),
        None => upstream,
    })
}

const ONE_UNIT: [StockLine; 1] = [StockLine {
    product_id: 1,
    quantity: 1,
}];

#[tokio::test]
async fn each_caller_reaches_only_its_own_routes_and_a_stranger_none() {
    let (base_url, keys, _data) = inventory_service().await;
    let orders = client(&base_url, Some((&keys, Peer::Service(Context::Orders))));
    let gateway = client(&base_url, Some((&keys, Peer::Gateway)));
    let stranger = client(&base_url, None);
    let payments = client(&base_url, Some((&keys, Peer::Service(Context::Payments))));

    assert!(matches!(
        stranger.reserve("r-1", &ONE_UNIT, 60_000).await,
        Err(DomainError::Unauthenticated(_))
    ));
    assert!(matches!(
        gateway.reserve("r-1", &ONE_UNIT, 60_000).await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        payments.available(1).await,
        Err(DomainError::Forbidden(_))
    ));
    assert_eq!(
        gateway.available(1).await.unwrap(),
        1,
        "refused calls reserved nothing"
    );
    orders.reserve("r-1", &ONE_UNIT, 60_000).await.unwrap();
    assert_eq!(gateway.available(1).await.unwrap(), 0);
}

#[tokio::test]
async fn a_token_of_another_deployment_or_for_another_service_is_401_with_the_shops_error_body() {
    let (base_url, keys, _data) = inventory_service().await;
    let http = reqwest::Client::new();
    let elsewhere = Keyring::generate()
        .identity(Peer::Gateway)
        .token_for(Peer::Service(Context::Inventory))
        .unwrap();
    let for_catalog = keys
        .identity(Peer::Gateway)
        .token_for(Peer::Service(Context::Catalog))
        .unwrap();
    for token in [elsewhere, for_catalog, "garbage".to_owned()] {
        let answer = http
            .get(format!("{base_url}/internal/inventory/stock/1"))
            .header(SERVICE_TOKEN_HEADER, &token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
    }
    // An unknown path stays a plain 404: the layer guards routes, not the route table.
    let unknown = http
        .get(format!("{base_url}/internal/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

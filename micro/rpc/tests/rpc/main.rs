//! The internal API across a real loopback hop: errors keep their meaning, dead replicas
//! are `Unavailable`, and only idempotent calls are retried.

use std::sync::Arc;

use domain::catalog::{Catalog, Product};
use domain::faults::Faults;
use domain::inventory::{Inventory, StockLine};
use domain::{Context, DomainError};
use micro_rpc::catalog::CatalogClient;
use micro_rpc::inventory::InventoryClient;
use micro_rpc::{Upstream, UpstreamSettings};
use store::catalog::SqlCatalog;
use store::inventory::SqlInventory;
use store::{Db, DbOptions};

/// A catalog + inventory service on a random port over a fresh SQLite file with two products
/// (one unit of stock each).
struct Service {
    base_url: String,
    _data: tempfile::TempDir,
}

async fn start_service() -> Service {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("service.db").display());
    let options = DbOptions {
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(2),
    };
    let db = Db::connect(&url, &options).await.unwrap();
    db.migrate(&[Context::Catalog, Context::Inventory])
        .await
        .unwrap();
    let products: Vec<Product> = (1..=2)
        .map(|id| Product {
            id,
            sku: format!("SKU-{id}"),
            name: format!("Thing {id}"),
            description: String::new(),
            category: "tools".into(),
            price_cents: 100,
        })
        .collect();
    let mut connection = db.writer().acquire().await.unwrap();
    store::catalog::seed_in(&mut connection, &products)
        .await
        .unwrap();
    store::inventory::seed_in(&mut connection, &[1, 2], 1)
        .await
        .unwrap();
    drop(connection);
    let faults = Faults::new();
    let router = micro_rpc::catalog::routes(Arc::new(SqlCatalog::new(db.clone(), faults.clone())))
        .merge(micro_rpc::inventory::routes(Arc::new(SqlInventory::new(
            db, faults,
        ))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Service {
        base_url,
        _data: data,
    }
}

/// An address nothing listens on: bound, then released.
async fn dead_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

fn upstream(context: Context, replicas: Vec<String>, retries: u32) -> Upstream {
    Upstream::new(
        context,
        replicas,
        UpstreamSettings {
            retries,
            ..UpstreamSettings::default()
        },
    )
}

#[tokio::test]
async fn a_not_found_in_the_service_is_a_not_found_at_the_caller() {
    let service = start_service().await;
    let catalog = CatalogClient(upstream(
        Context::Catalog,
        vec![service.base_url.clone()],
        0,
    ));
    assert_eq!(catalog.get(1).await.unwrap().name, "Thing 1");
    assert!(
        matches!(catalog.get(99).await, Err(DomainError::NotFound(message)) if message.contains("99"))
    );
}

#[tokio::test]
async fn a_batch_lookup_returns_the_products_that_exist() {
    let service = start_service().await;
    let catalog = CatalogClient(upstream(
        Context::Catalog,
        vec![service.base_url.clone()],
        0,
    ));
    let found = catalog.get_many(&[2, 99, 1]).await.unwrap();
    let ids: Vec<i64> = found.iter().map(|product| product.id).collect();
    assert_eq!(ids, vec![1, 2]);
}

#[tokio::test]
async fn a_conflict_in_the_service_is_a_conflict_at_the_caller() {
    let service = start_service().await;
    let inventory = InventoryClient(upstream(
        Context::Inventory,
        vec![service.base_url.clone()],
        0,
    ));
    let two_units = [StockLine {
        product_id: 1,
        quantity: 2,
    }];
    assert!(matches!(
        inventory.reserve("r-1", &two_units, 1000).await,
        Err(DomainError::Conflict(_))
    ));
    let one_unit = [StockLine {
        product_id: 1,
        quantity: 1,
    }];
    let held = inventory.reserve("r-2", &one_unit, 1000).await.unwrap();
    assert_eq!(
        inventory.reserve("r-2", &one_unit, 1000).await.unwrap(),
        held,
        "a repeated reserve is a no-op"
    );
    assert_eq!(inventory.available(1).await.unwrap(), 0);
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_unavailable() {
    let catalog = CatalogClient(upstream(Context::Catalog, vec![dead_address().await], 1));
    assert!(matches!(
        catalog.get(1).await,
        Err(DomainError::Unavailable(_))
    ));
}

#[tokio::test]
async fn an_idempotent_call_is_retried_on_the_next_replica() {
    let service = start_service().await;
    let replicas = vec![dead_address().await, service.base_url.clone()];
    let catalog = CatalogClient(upstream(Context::Catalog, replicas, 1));
    for _ in 0..4 {
        assert_eq!(
            catalog.get(2).await.unwrap().id,
            2,
            "every call lands, whichever replica it starts on"
        );
    }
}

#[tokio::test]
async fn a_call_that_is_not_idempotent_is_not_retried() {
    use domain::cart::Cart;
    let service = start_service().await;
    let replicas = vec![dead_address().await, service.base_url.clone()];
    let cart = micro_rpc::cart::CartClient(upstream(Context::Cart, replicas, 1));
    // The first call starts on the dead replica and must not move on to the live one.
    assert!(matches!(
        cart.remove(1, 1).await,
        Err(DomainError::Unavailable(_))
    ));
}

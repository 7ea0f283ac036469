//! Errors keep their meaning across the hop: a service's 404 and 409 are the caller's, a
//! service that does not answer is `Unavailable`.

use domain::catalog::Catalog;
use domain::inventory::{Inventory, StockLine};
use domain::{Context, DomainError};
use micro_rpc::catalog::CatalogClient;
use micro_rpc::inventory::InventoryClient;

use crate::support::{dead_address, start_service, upstream};

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
async fn a_client_without_replicas_is_unavailable_at_once() {
    let catalog = CatalogClient(upstream(Context::Catalog, Vec::new(), 1));
    assert!(matches!(
        catalog.get(1).await,
        Err(DomainError::Unavailable(message)) if message.contains("no replicas")
    ));
}

//! The `catalog` service: products, listing, search.

use std::sync::Arc;

use domain::Context;
use micro_kit::{Routes, Service};
use store::catalog::SqlCatalog;

/// The catalog's part of any process that hosts it.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    let catalog = Arc::new(SqlCatalog::new(service.db.clone(), service.faults.clone()));
    Ok(micro_rpc::catalog::routes(catalog))
}

/// Serves the catalog alone on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(Context::Catalog, mount, settings, listener, shutdown).await
}

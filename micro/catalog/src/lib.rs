//! The `catalog` service: products, listing, search.

use std::sync::Arc;

use domain::Context;
use micro_kit::Service;
use store::catalog::SqlCatalog;

/// Serves the catalog on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service::open(Context::Catalog, settings).await?;
    let catalog = Arc::new(SqlCatalog::new(service.db.clone(), service.faults.clone()));
    let router = service.router(micro_rpc::catalog::routes(catalog), Vec::new());
    service.serve(router, listener, shutdown).await
}

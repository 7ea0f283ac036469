//! The `recommendations` service: "customers also bought". Deliberately non-critical.

use std::sync::Arc;

use domain::Context;
use micro_kit::Service;
use store::recommendations::SqlRecommendations;

/// Serves recommendations on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service::open(Context::Recommendations, settings).await?;
    let recommendations = Arc::new(SqlRecommendations::new(
        service.db.clone(),
        service.faults.clone(),
    ));
    let router = service.router(
        micro_rpc::recommendations::routes(recommendations),
        Vec::new(),
    );
    service.serve(router, listener, shutdown).await
}

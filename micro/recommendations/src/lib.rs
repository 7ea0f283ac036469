//! The `recommendations` service: "customers also bought". Deliberately non-critical.

use std::sync::Arc;

use domain::Context;
use micro_kit::{Routes, Service};
use store::recommendations::SqlRecommendations;

/// The recommendations' part of any process that hosts them.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    let recommendations = Arc::new(SqlRecommendations::new(
        service.db.clone(),
        service.faults.clone(),
    ));
    Ok(micro_rpc::recommendations::routes(recommendations))
}

/// Serves recommendations alone on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(
        Context::Recommendations,
        mount,
        settings,
        listener,
        shutdown,
    )
    .await
}

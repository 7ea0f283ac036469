//! The `payments` service: charges and refunds behind a simulated provider latency.

use std::sync::Arc;

use domain::Context;
use micro_kit::{Routes, Service};

/// The payments' part of any process that hosts them.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    Ok(micro_rpc::payments::routes(Arc::new(
        service.sql_payments(),
    )))
}

/// Serves payments alone on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(Context::Payments, mount, settings, listener, shutdown).await
}

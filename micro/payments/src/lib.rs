//! The `payments` service: charges and refunds behind a simulated provider latency.

use std::sync::Arc;
use std::time::Duration;

use domain::Context;
use micro_kit::Service;
use store::payments::SqlPayments;

/// Serves payments on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = Service::open(Context::Payments, settings).await?;
    let latency = Duration::from_millis(service.settings.payments_latency_ms);
    let payments = Arc::new(SqlPayments::new(
        service.db.clone(),
        service.faults.clone(),
        latency,
    ));
    let router = service.router(micro_rpc::payments::routes(payments), Vec::new());
    service.serve(router, listener, shutdown).await
}

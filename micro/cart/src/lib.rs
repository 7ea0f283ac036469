//! The `cart` service: one cart per user.

use std::sync::Arc;

use domain::Context;
use micro_kit::{Routes, Service};
use store::cart::SqlCart;

/// The cart's part of any process that hosts it.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    let cart = Arc::new(SqlCart::new(service.db.clone(), service.faults.clone()));
    Ok(micro_rpc::cart::routes(cart))
}

/// Serves carts alone on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(Context::Cart, mount, settings, listener, shutdown).await
}

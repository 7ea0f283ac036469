//! The `users` service: registration and log-in; it signs the bearer tokens the gateway
//! verifies, so both need the same `token_secret`.

use std::sync::Arc;

use anyhow::Context as _;
use domain::Context;
use domain::tokens::TokenKeys;
use domain::users::ThrottledUsers;
use micro_kit::{Routes, Service};
use store::users::SqlUsers;

/// The users' part of any process that hosts them.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    let secret = service
        .settings
        .token_secret
        .clone()
        .context("the users service needs token_secret (SHOPLAB_TOKEN_SECRET): the gateway verifies what it signs")?;
    let tokens = TokenKeys::new(secret.as_bytes(), service.settings.token_ttl_secs);
    // Failed logins are counted here, where passwords are verified (per account, and per
    // the client address the gateway passes on); the gateway passes the 429 on. A reset
    // of this process forgets the counts with the accounts.
    let login_throttles = service.settings.login_throttles();
    service.forget_on_reset(login_throttles.clone());
    let users = Arc::new(ThrottledUsers::new(
        SqlUsers::new(service.db.clone(), service.faults.clone(), tokens),
        login_throttles,
    ));
    Ok(micro_rpc::users::routes(users))
}

/// Serves users alone on `listener` until `shutdown` resolves.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(Context::Users, mount, settings, listener, shutdown).await
}

//! `shoplab service <name> ...` (hidden): one process of the microservices build, as the
//! supervisor starts it. Running the services from the `shoplab` executable itself means
//! `cargo run -p shoplab -- serve micro` needs no other binary built; the `micro-*` binaries
//! run exactly the same `serve` functions (what a container starts).

use domain::Context;

use loadtest_platform::local::supervisor::{Component, die_with_supervisor};

/// Serves `component` from its flags until SIGTERM/SIGINT. `admin_port` is the gateway's.
pub(crate) async fn run(
    component: Component,
    admin_port: u16,
    backends: &[String],
    args: &api::cli::ServeArgs,
) -> anyhow::Result<()> {
    die_with_supervisor()?;
    loadtest_platform::pinning::pin_from_env()?;
    match component {
        Component::Gateway => micro_gateway::run(args, admin_port).await,
        Component::Monolith => monolith::run(args).await,
        Component::FrontDoor => {
            loadtest_platform::sidecars::front_door::run(
                args.port.unwrap_or(0),
                admin_port,
                backends,
            )
            .await
        }
        Component::Service(context) => match context {
            Context::Catalog => micro_kit::run(context, args, micro_catalog::serve).await,
            Context::Inventory => micro_kit::run(context, args, micro_inventory::serve).await,
            Context::Cart => micro_kit::run(context, args, micro_cart::serve).await,
            Context::Orders => micro_kit::run(context, args, micro_orders::serve).await,
            Context::Payments => micro_kit::run(context, args, micro_payments::serve).await,
            Context::Users => micro_kit::run(context, args, micro_users::serve).await,
            Context::Recommendations => {
                micro_kit::run(context, args, micro_recommendations::serve).await
            }
        },
    }
}

//! `shoplab service <name> ...` (hidden): one process of the microservices build, as the
//! supervisor starts it. Running the services from the `shoplab` executable itself means
//! `cargo run -p shoplab -- serve micro` needs no other binary built; the `micro-*` binaries
//! run exactly the same `serve` functions (what a container starts).

use anyhow::Context as _;
use domain::Context;
use nix::sys::signal::Signal;

use crate::supervisor::{Component, SUPERVISOR_PID};

/// Serves `component` from its flags until SIGTERM/SIGINT. `admin_port` is the gateway's.
pub(crate) async fn run(
    component: Component,
    admin_port: u16,
    backends: &[String],
    args: &api::cli::ServeArgs,
) -> anyhow::Result<()> {
    die_with_supervisor()?;
    crate::lab::pinning::pin_from_env()?;
    match component {
        Component::Gateway => micro_gateway::run(args, admin_port).await,
        Component::Monolith => monolith::run(args).await,
        Component::FrontDoor => {
            crate::supervisor::front_door::run(args.port.unwrap_or(0), admin_port, backends).await
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

/// When started by a supervisor, asks the kernel to SIGKILL this process the moment the
/// supervisor dies, however it dies — `kill -9` included, where it gets no chance to stop
/// its children itself.
///
/// This is Linux's `PR_SET_PDEATHSIG`, set by the child on itself as its first act rather
/// than in the parent between `fork` and `exec` (`pre_exec`), which would need `unsafe` code
/// the workspace forbids. Setting it after `exec` leaves a window in which the supervisor
/// may already have died; checking the parent PID afterwards closes it. SIGKILL rather than
/// SIGTERM because a paused (SIGSTOPped) service would sit on a pending SIGTERM forever.
///
/// The signal follows the supervisor's *thread* that spawned the child; the supervisor
/// spawns from its runtime's long-lived threads, which end only with the process.
pub(crate) fn die_with_supervisor() -> anyhow::Result<()> {
    let Ok(supervisor) = std::env::var(SUPERVISOR_PID) else {
        return Ok(());
    };
    let supervisor: i32 = supervisor
        .parse()
        .with_context(|| format!("{SUPERVISOR_PID} is not a pid: {supervisor:?}"))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("set the parent-death signal")?;
    anyhow::ensure!(
        nix::unistd::getppid().as_raw() == supervisor,
        "the supervisor (pid {supervisor}) is already gone"
    );
    Ok(())
}

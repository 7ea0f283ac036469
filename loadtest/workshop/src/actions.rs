//! What each control does to one build, through the lab's [`Target`] (and its
//! `Deployment`): kill, pause and resume, in-process faults, network faults through a fault
//! proxy, rolling and recreate deploys, a bad release that is rolled back, one more
//! replica; and the heal of everything.
//!
//! A control names a context (`catalog`, ..., `recommendations`), `gateway` or `monolith`.
//! On the monolith a context is the monolith process for a kill, a pause or a deploy (one
//! process runs every context: killing "recommendations" kills the shop — that is the
//! lesson), and the context inside it for an in-process fault.

use std::collections::BTreeSet;
use std::time::Instant;

use domain::Context;
use domain::faults::{self, Fault, Layer};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::state::{Lab, Workshop, lock};
use loadtest_platform::Target;
use loadtest_results::component::{Build, Component};

/// One control, parsed and checked before anything is done.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Kill,
    Pause,
    Resume,
    /// A fault of the catalogue: in-process (through the admin API) or on the link between
    /// the context's callers and its service (microservices only).
    Fault(Fault),
    /// `count` deploys one after the other (more than one: a deploy storm).
    Deploy {
        rolling: bool,
        count: u32,
    },
    /// A rolling deploy of a release that never gets ready; the old process keeps serving.
    BadRelease,
    Scale,
}

/// The body of a deploy control; every field optional, checked per action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployParams {
    strategy: Option<String>,
    count: Option<u32>,
}

/// The most deploys one storm may ask for.
const MAX_STORM: u32 = 50;

impl Action {
    /// Parses `/api/builds/{build}/components/{component}/{name}` and its body.
    pub fn parse(name: &str, body: Option<Value>) -> Result<Action, ApiError> {
        let body = match body {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(body @ Value::Object(_)) => body,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "the body of {name} is a JSON object, not {other}"
                )));
            }
        };
        let action = match name {
            "kill" => Action::Kill,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            // Both read their kind and parameters through the fault catalogue
            // (`domain::faults`), which the admin API validates with too: one list of kinds,
            // one default and one range per parameter.
            "fault" => match fault_from(&body, "")? {
                fault if fault.spec().layer == Layer::InProcess => Action::Fault(fault),
                fault => {
                    return Err(ApiError::invalid(format!(
                        "{} is not an in-process fault (its layer is {}); the fault control takes {}",
                        fault.name(),
                        fault.spec().layer.as_str(),
                        kinds_of(Layer::InProcess, "")
                    )));
                }
            },
            "network" => match fault_from(&body, "net_")? {
                fault if fault.spec().layer == Layer::Network => Action::Fault(fault),
                other => {
                    return Err(ApiError::invalid(format!(
                        "{} is not a network fault; the network control takes {}",
                        other.name(),
                        kinds_of(Layer::Network, "net_")
                    )));
                }
            },
            "deploy" => {
                let params: DeployParams = serde_json::from_value(body)
                    .map_err(|error| ApiError::invalid(format!("bad body for deploy: {error}")))?;
                let rolling = match params.strategy.as_deref() {
                    Some("rolling") | None => true,
                    Some("recreate") => false,
                    Some(other) => {
                        return Err(ApiError::invalid(format!(
                            "strategy must be rolling or recreate, not {other:?}"
                        )));
                    }
                };
                let count = params.count.unwrap_or(1);
                if !(1..=MAX_STORM).contains(&count) {
                    return Err(ApiError::invalid(format!("count must be 1..={MAX_STORM}")));
                }
                Action::Deploy { rolling, count }
            }
            "rollback" => Action::BadRelease,
            "scale" => Action::Scale,
            other => {
                return Err(ApiError::not_found(format!(
                    "no control {other:?}: kill, pause, resume, fault, network, deploy, rollback or scale"
                )));
            }
        };
        Ok(action)
    }

    /// Whether the control takes seconds (it then runs in the background and reports in
    /// the event log).
    pub fn is_long(&self) -> bool {
        matches!(
            self,
            Action::Deploy { .. } | Action::BadRelease | Action::Scale
        ) || matches!(self, Action::Fault(fault) if fault.spec().layer == Layer::Network)
    }
}

/// The catalogue's fault named by the body's `kind` (with `prefix`, so the network control
/// says `cut` for `net_cut`), its other fields the parameters, defaults filled in.
fn fault_from(body: &Value, prefix: &str) -> Result<Fault, ApiError> {
    let mut params = body.as_object().cloned().unwrap_or_default();
    let kind = match params.remove("kind") {
        Some(Value::String(kind)) => kind,
        _ => {
            return Err(ApiError::invalid(
                "the body names its fault: {\"kind\": ...}",
            ));
        }
    };
    faults::validate(&format!("{prefix}{kind}"), &Value::Object(params))
        .map_err(|error| ApiError::invalid(error.to_string()))
}

/// The kinds of one layer, as a control spells them.
fn kinds_of(layer: Layer, prefix: &str) -> String {
    faults::catalogue()
        .iter()
        .filter(|spec| spec.layer == layer)
        .map(|spec| spec.name.trim_start_matches(prefix))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a control names, resolved on one build.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Aim {
    /// The process it acts on.
    pub process: Component,
    /// The context an in-process or network fault goes to.
    pub context: Option<Context>,
}

/// Resolves a name on `build`, or says why it does not exist there.
pub(crate) fn aim(build: Build, name: &str) -> Result<Aim, ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "no component {name:?}: a context (catalog, inventory, cart, orders, payments, users, recommendations), gateway, monolith or front"
        ))
    };
    // `front`: whichever process owns the public port (the monolith, or the gateway), so
    // one control can deploy the front of both builds side by side.
    let component = match (build, name) {
        (Build::Monolith, "front") => Component::Monolith,
        (Build::Micro, "front") => Component::Gateway,
        _ => Component::parse(name).ok_or_else(unknown)?,
    };
    match (build, component) {
        (_, Component::FrontDoor) => Err(ApiError::invalid(
            "the front door is the lab's, not the shop's; it is not a control target",
        )),
        (Build::Monolith, Component::Service(context)) => Ok(Aim {
            process: Component::Monolith,
            context: Some(context),
        }),
        (Build::Monolith, Component::Monolith) => Ok(Aim {
            process: Component::Monolith,
            context: None,
        }),
        (Build::Monolith, Component::Gateway) => Err(ApiError::not_found(
            "the monolith has no gateway: its public router is in the one process",
        )),
        (Build::Micro, Component::Service(context)) => Ok(Aim {
            process: component,
            context: Some(context),
        }),
        (Build::Micro, Component::Gateway) => Ok(Aim {
            process: component,
            context: None,
        }),
        (Build::Micro, Component::Monolith) => Err(ApiError::not_found(
            "the microservices build has no monolith process",
        )),
    }
}

/// Checks that `action` makes sense for `aim` before anything runs.
pub(crate) fn check(build: Build, aim: Aim, action: &Action) -> Result<(), ApiError> {
    match action {
        Action::Fault(fault) if fault.spec().layer == Layer::Network => {
            if build == Build::Monolith {
                Err(ApiError::invalid(
                    "not applicable: the monolith's contexts call each other in-process; there is no network between them to cut",
                ))
            } else if aim.context.is_none() {
                Err(ApiError::invalid(
                    "network faults go between a service's callers and a service, not the gateway",
                ))
            } else {
                Ok(())
            }
        }
        Action::Fault(_) if aim.context.is_none() => Err(ApiError::invalid(format!(
            "in-process faults go to a context (catalog, ..., recommendations), not to {}",
            aim.process
        ))),
        Action::Scale if aim.process == Component::Gateway => Err(ApiError::invalid(
            "the gateway runs once; scale a service (or the monolith)",
        )),
        _ => Ok(()),
    }
}

/// Refuses a control or a fault the lab's platform or topology does not realize, with its
/// reason, before the control is accepted (the page greys it out for the same reason).
/// `name` is the control as its path spells it.
pub(crate) fn realized(lab: &Lab, name: &str, action: &Action) -> Result<(), ApiError> {
    let identity = lab.identity();
    let why = match action {
        Action::Fault(fault) => identity.capabilities.unavailable.get(fault.name()),
        _ => identity.capabilities.controls.get(name),
    };
    match why {
        Some(why) => Err(ApiError::invalid(format!("{}: {why}", identity.name))),
        None => Ok(()),
    }
}

/// Runs `action` on one build; returns what happened, in a sentence.
pub(crate) async fn perform(
    workshop: &Workshop,
    lab: &Lab,
    aim: Aim,
    action: Action,
) -> Result<String, ApiError> {
    let mut target = lab.target().await?;
    let process = aim.process;
    let runs = match (lab.identity().build, aim.context) {
        (Build::Monolith, Some(context)) => format!("{process} (it runs {context})"),
        _ => process.to_string(),
    };
    let failed = |error: anyhow::Error| ApiError::failed(format!("{error:#}"));
    let message = match action {
        Action::Kill => {
            target.kill(process).await.map_err(failed)?;
            format!("killed {runs} (kill -9)")
        }
        Action::Pause => {
            target.pause(process, true).await.map_err(failed)?;
            lock(&lab.paused).insert((process, 1));
            format!("paused {runs} (SIGSTOP)")
        }
        Action::Resume => {
            target.pause(process, false).await.map_err(failed)?;
            lock(&lab.paused).remove(&(process, 1));
            format!("resumed {runs} (SIGCONT)")
        }
        Action::Fault(fault) => {
            let context = aim.context.expect("checked: a fault names a context");
            if fault.spec().layer == Layer::Network {
                network(workshop, lab, &mut target, context, fault)
                    .await
                    .map_err(failed)?
            } else {
                // In-process faults are healed through the admin API, not by undo steps.
                target.inject(context, fault).await.map_err(failed)?;
                format!(
                    "fault {} {} in {context}, on {runs}",
                    fault.name(),
                    fault.params()
                )
            }
        }
        Action::Deploy { rolling, count } => {
            let strategy = if rolling { "rolling" } else { "recreate" };
            let started = Instant::now();
            for round in 1..=count {
                let deployed = if rolling {
                    target.roll(process).await
                } else {
                    target.recreate(process).await
                };
                deployed.map_err(|error| {
                    ApiError::failed(format!("{strategy} deploy {round} of {count}: {error:#}"))
                })?;
            }
            format!(
                "{strategy} deploy of {process} done{} in {:.1} s",
                if count > 1 {
                    format!(" ({count} in a row)")
                } else {
                    String::new()
                },
                started.elapsed().as_secs_f64()
            )
        }
        Action::BadRelease => {
            let why = target.roll_bad_release(process).await.map_err(failed)?;
            let why = why.lines().next().unwrap_or_default().to_owned();
            format!(
                "bad release of {process} never got ready and was rolled back; the old process kept serving ({why})"
            )
        }
        Action::Scale => {
            let replica = target.add_replica(process).await.map_err(failed)?;
            format!("{process} scaled out to {replica} replicas")
        }
    };
    Ok(message)
}

/// A network fault on the link into `context`'s service. The link gets its fault proxy on
/// first use: the proxy is one more loopback hop, which the hop exercise should not pay
/// until someone cuts a link; inserting it restarts orders and the gateway (they learn the
/// proxy's address), which the event log says.
async fn network(
    workshop: &Workshop,
    lab: &Lab,
    target: &mut Target,
    context: Context,
    fault: Fault,
) -> anyhow::Result<String> {
    let prepared = lock(&lab.network).prepared.contains(&context);
    if !prepared {
        workshop.event(
            Some(lab.name()),
            "deploy",
            format!(
                "making the link into {context} breakable (on the local platform a fault proxy in front of it: its callers, gateway and orders, restart to use it)"
            ),
        );
        target
            .place_proxies(&BTreeSet::from([context]), &BTreeSet::new())
            .await?;
        lock(&lab.network).prepared.insert(context);
    }
    // One fault per link at a time: the one in force is lifted first.
    let replaced = {
        let mut network = lock(&lab.network);
        let index = network
            .in_force
            .iter()
            .position(|(link, _)| *link == context);
        index.map(|index| network.in_force.remove(index).1)
    };
    if let Some(old) = replaced {
        target.lift(old).await?;
    }
    let injection = target.inject(context, fault).await?;
    if let Some(why) = &injection.not_realized {
        anyhow::bail!("{why}");
    }
    let note = injection
        .note
        .clone()
        .unwrap_or_else(|| format!("{} {}", fault.name(), fault.params()));
    lock(&lab.network).in_force.push((context, injection));
    Ok(format!("network fault into {context}: {note}"))
}

/// Heals everything on one build: in-process faults, paused processes, broken links,
/// exited processes (restarted at once). Returns what it did.
pub(crate) async fn heal(lab: &Lab) -> Result<Vec<String>, ApiError> {
    // A heal queues behind a deploy rather than being refused: a deploy that waits for a
    // dependency the heal would bring back ends by its own deadline.
    let mut target = lab.target_within(HEAL_LOCK_WAIT).await?;
    let mut done = Vec::new();
    // Links first: the faults are cleared through the gateway, which fans out to every
    // service, and one behind a cut link would hold that call until its timeout.
    let in_force = std::mem::take(&mut lock(&lab.network).in_force);
    for (context, injection) in in_force {
        target.lift(injection).await.map_err(|error| {
            ApiError::failed(format!("heal the link into {context}: {error:#}"))
        })?;
        done.push(format!("the link into {context} healed"));
    }
    let paused: Vec<(Component, usize)> = std::mem::take(&mut *lock(&lab.paused))
        .into_iter()
        .collect();
    for (component, replica) in paused {
        if target.pause(component, false).await.is_ok() {
            done.push(format!("{component}#{replica} resumed"));
        }
    }
    for (component, replica) in target.exited() {
        target.restart(component, replica).await.map_err(|error| {
            ApiError::failed(format!("restart {component}#{replica}: {error:#}"))
        })?;
        *lock(&lab.restarts).entry((component, replica)).or_default() += 1;
        // The process's own name: a group's on a topology between the builds.
        done.push(format!(
            "{}#{replica} restarted",
            target.process_name(component)
        ));
    }
    if target.heal_faults().await.is_ok() {
        done.push("faults cleared".to_owned());
    }
    Ok(done)
}

/// How long a heal waits for a build another control holds: longer than a deploy's start
/// deadline (60 s).
const HEAL_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(75);

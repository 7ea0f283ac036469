//! The topology picker: the teacher names a running topology and a preset or a spec, and
//! the workshop starts the chosen grouping, moves the slot (its colour, its series, its place
//! on the page) onto it, and stops the old one. Everything is checked before anything stops:
//! a spec that names no grouping, a topology already running, a platform that cannot run
//! it are a 4xx and the running topology goes on untouched; a start that fails is a 502 and
//! the old topology still runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::body;
use super::error::ApiError;
use super::identity::Identity;
use super::load;
use super::state::{Network, Workshop, lock, shopfront};
use domain::Topology;
use domain::topology::{Checkout, PRESETS};
use loadtest_platform::Target;

/// How long the picker waits for a control holding the target (a heal queues for as long).
const SWAP_WAIT: Duration = Duration::from_secs(75);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PickRequest {
    topology: String,
}

/// `PUT /api/builds/{build}/topology` with `{"topology": "coarse"}` (a preset's name or a
/// spec): the topology `build` names is replaced by the chosen one. Answers once the new
/// one is ready and seeded and the old one stopped; the load, whose journeys aim at the old
/// topology's address, is stopped first.
pub(crate) async fn pick(
    State(workshop): State<Arc<Workshop>>,
    Path(build): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: PickRequest = body(&bytes)?.ok_or_else(|| {
        ApiError::invalid(
            "the body must be {\"topology\": \"...\"}: a preset's name or a spec such as \
             catalog+recommendations,inventory,cart+orders+payments,users",
        )
    })?;
    let topology =
        Topology::parse(&request.topology).map_err(|error| ApiError::invalid(error.to_string()))?;
    let lab_index = match workshop.labs_named(&build)?[..] {
        [lab_index] => lab_index,
        _ => {
            return Err(ApiError::invalid(
                "name the one running topology to replace, not both",
            ));
        }
    };
    if let Some(running) = workshop
        .labs
        .iter()
        .find(|lab| lab.identity().topology.spec() == topology.spec())
    {
        return Err(ApiError::conflict(format!(
            "{topology} already runs here (as {}); pick another grouping",
            running.name()
        )));
    }
    let registration = loadtest_platform::registration(&workshop.settings.platform)
        .map_err(|error| ApiError::failed(format!("{error:#}")))?;
    loadtest_platform::check_topology(registration, &topology)
        .map_err(|error| ApiError::invalid(format!("{error:#}")))?;

    // The swap runs as a task of its own: a caller that goes away (a closed page) must not
    // cancel it halfway, with the new topology started and the old one not yet stopped.
    tokio::spawn(swap(workshop, lab_index, topology))
        .await
        .map_err(|error| ApiError::failed(format!("the change of topology failed: {error}")))?
        .map(Json)
}

/// Starts `topology`, puts it in slot `lab_index`, stops what ran there; checked by `pick`.
async fn swap(
    workshop: Arc<Workshop>,
    lab_index: usize,
    topology: Topology,
) -> Result<Value, ApiError> {
    let lab = &workshop.labs[lab_index];
    let old_name = lab.name();
    let _claim = workshop
        .claim(lab_index, &format!("a change of topology to {topology}"))
        .await?;
    load::stop(&workshop, "for a change of topology").await?;
    // Held from the start of the new topology to the swap, so no control (and no load
    // start) reaches the old one in between; the page keeps the last view meanwhile.
    let mut held = lab.target_within(SWAP_WAIT).await?;
    workshop.event(
        Some(old_name.clone()),
        "topology",
        format!("starting {topology} to replace {old_name} ..."),
    );
    let started = Instant::now();
    let failed = |what: String| {
        workshop.event(Some(old_name.clone()), "error", what.clone());
        ApiError::failed(what)
    };
    let target = Target::start_topology(&topology, &workshop.settings)
        .await
        .map_err(|error| {
            failed(format!(
                "start {topology}: {error:#}; {old_name} keeps running"
            ))
        })?;
    let reset = match target.reset(&workshop.settings).await {
        Ok(reset) => reset,
        Err(error) => {
            let _ = target.stop().await;
            return Err(failed(format!(
                "seed {topology}: {error:#}; {old_name} keeps running"
            )));
        }
    };
    let identity = Identity::of(&target);
    let name = identity.name.clone();
    let old = std::mem::replace(&mut *held, target);
    lab.set_identity(identity);
    *lock(&lab.shop) = shopfront(&reset);
    lab.recorder.take();
    lock(&lab.checkouts).clear();
    lock(&lab.paused).clear();
    lock(&lab.restarts).clear();
    *lock(&lab.network) = Network::default();
    drop(held);
    let stopped = old.stop().await;
    let message = format!(
        "{old_name} replaced by {topology}: {} in {:.1} s",
        processes_of(&topology),
        started.elapsed().as_secs_f64()
    );
    workshop.event(Some(name.clone()), "topology", message.clone());
    if let Err(error) = stopped {
        workshop.event(
            Some(name.clone()),
            "error",
            format!("stop {old_name}: {error:#}"),
        );
    }
    Ok(json!({
        "build": name,
        "replaced": old_name,
        "topology": describe(&topology),
        "message": message,
    }))
}

/// A topology as the page draws it: its name and spec, its groups (the process each is and
/// the contexts it hosts), whether a gateway stands in front and how checkout runs.
pub(crate) fn describe(topology: &Topology) -> Value {
    let groups: Vec<Value> = topology
        .groups()
        .iter()
        .map(|group| json!({ "name": group.name(), "contexts": group.contexts() }))
        .collect();
    json!({
        "name": topology.to_string(),
        "spec": topology.spec(),
        "preset": topology.preset(),
        "groups": groups,
        "gateway": topology.needs_gateway(),
        "checkout": match topology.checkout() {
            Checkout::Local => "local",
            Checkout::Saga => "saga",
        },
    })
}

/// Every preset for the picker: its name, its spec and why a team would choose it.
pub(crate) fn presets() -> Vec<Value> {
    PRESETS
        .iter()
        .map(|preset| {
            let topology = Topology::of_preset(preset);
            json!({
                "name": preset.name,
                "spec": topology.spec(),
                "why": preset.why,
                "processes": processes_of(&topology),
            })
        })
        .collect()
}

/// "4 processes and the gateway", "one process".
fn processes_of(topology: &Topology) -> String {
    match topology.groups().len() {
        1 => "one process".to_owned(),
        groups => format!("{groups} processes and the gateway"),
    }
}

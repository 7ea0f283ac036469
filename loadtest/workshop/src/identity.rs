//! What runs in one slot of the workshop: the topology, the build it is recorded as, what
//! its platform and grouping realize (the page greys out the rest, with the reason), and
//! the slot's colour.

use std::collections::BTreeMap;

use serde::Serialize;

use domain::Topology;
use loadtest_platform::Target;
use loadtest_report::theme;
use loadtest_results::component::Build;

/// What runs in one slot: the topology, the build it is recorded as, and what its platform
/// realizes on it.
pub(crate) struct Identity {
    /// The topology's name (a preset's, or its spec): how the API, the page and the event
    /// log name this lab (`monolith` and `micro` for the two builds).
    pub name: String,
    /// Monolith for one process, micro for anything with a gateway in front.
    pub build: Build,
    pub topology: Topology,
    /// Read once when the topology started, for the page to grey out controls.
    pub capabilities: Capabilities,
}

impl Identity {
    pub fn of(target: &Target) -> Identity {
        Identity {
            name: target.topology_name(),
            build: target.build,
            topology: target.topology().clone(),
            capabilities: Capabilities::of(target),
        }
    }
}

/// What one topology's platform realizes, as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Capabilities {
    pub platform: &'static str,
    pub lab_restarts: bool,
    /// Every catalogue fault not realized here, with the reason.
    pub unavailable: BTreeMap<&'static str, String>,
    /// Every control of the page (`kill`, `pause`, `resume`, `deploy`, `rollback`, `scale`)
    /// not realized here, with the reason.
    pub controls: BTreeMap<&'static str, String>,
    /// Why the self-healing loop does not restart what exits here, if it does not.
    pub self_healing: Option<String>,
}

/// The controls that act on one process by its component.
pub(crate) const PROCESS_CONTROLS: [&str; 6] =
    ["kill", "pause", "resume", "deploy", "rollback", "scale"];

impl Capabilities {
    pub fn of(target: &Target) -> Capabilities {
        // A platform that names no component a control could aim at realizes none of the
        // process controls; one that cannot add a replica greys out scale alone (the groups
        // of a topology between the builds: killed, paused and rolled by any context they
        // host, never replicated yet).
        let mut controls = BTreeMap::new();
        if target.components().is_empty() {
            let why = format!(
                "not applicable: the {} platform names no process of the topology {} a \
                 control could aim at",
                target.platform_name(),
                target.topology_name()
            );
            for control in PROCESS_CONTROLS {
                controls.insert(control, why.clone());
            }
        } else if let Err(why) = target.adds_replicas() {
            controls.insert("scale", why);
        }
        let self_healing = if target.lab_restarts_processes() {
            None
        } else {
            Some(format!(
                "the {} platform restarts what exits itself; the lab only watches",
                target.platform_name()
            ))
        };
        Capabilities {
            self_healing,
            platform: target.platform_name(),
            lab_restarts: target.lab_restarts_processes(),
            unavailable: domain::faults::catalogue()
                .iter()
                .filter_map(|spec| {
                    target
                        .realizes(spec.default_fault())
                        .err()
                        .map(|why| (spec.name, why))
                })
                .collect(),
            controls,
        }
    }
}

/// A slot's colour: the monolith blue and the microservices orange as in every chart of the
/// report, any other topology one of a few more, by its slot.
pub(crate) fn color_of(topology: &Topology, slot: usize) -> String {
    const OTHERS: [(u8, u8, u8); 4] = [
        (44, 160, 44),
        (148, 103, 189),
        (140, 86, 75),
        (23, 190, 207),
    ];
    let (red, green, blue) = match topology.preset() {
        Some("monolith") => (theme::MONOLITH.0, theme::MONOLITH.1, theme::MONOLITH.2),
        Some("micro") => (theme::MICRO.0, theme::MICRO.1, theme::MICRO.2),
        _ => OTHERS[slot % OTHERS.len()],
    };
    format!("#{red:02x}{green:02x}{blue:02x}")
}

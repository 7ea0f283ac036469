//! How much of each experiment a run does: `quick` (CI, workshops: about two minutes on a
//! 2-core machine) or `full`. Every field is recorded in `results.json`.

use std::time::Duration;

use domain::Context;
use domain::faults::{self, Fault, Range};
use serde::{Deserialize, Serialize};

use crate::experiments::capacity::{Arrivals, CapacityPlan, Slo};

/// A fault the faults experiment injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` the process that runs the context; the lab restarts it (self-healing).
    Kill,
    /// SIGSTOP the process that runs the context; SIGCONT to heal.
    Pause,
    /// Every call into the context waits this long (in-process, admin API).
    Latency,
    /// A share of calls into the context fail with `unavailable` (in-process, admin API).
    Errors,
    /// The next call into the context aborts its process; the lab restarts it.
    Abort,
    /// Busy threads in the process that runs the context.
    CpuHog,
    /// Memory allocated at a steady rate in the process that runs the context.
    Leak,
    /// Every answer from the context's service is held back (a fault proxy between its
    /// callers and it; microservices only).
    NetLatency,
    /// Every connection to the context's service is closed before it answers (fault proxy).
    NetReset,
    /// Connections to the context's service are accepted and nothing answers: a blackhole
    /// (fault proxy).
    NetCut,
    /// The database holding the context's data drops every connection (a fault proxy in
    /// front of PostgreSQL; the monolith's one database).
    DbDown,
    /// The process that runs the context gets a fifth of one core (cgroup v1 CFS quota).
    CpuLimit,
}

impl FaultKind {
    /// Every kind, in the order the report lists them.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Latency,
        FaultKind::Errors,
        FaultKind::Abort,
        FaultKind::CpuHog,
        FaultKind::Leak,
        FaultKind::NetLatency,
        FaultKind::NetReset,
        FaultKind::NetCut,
        FaultKind::DbDown,
        FaultKind::CpuLimit,
    ];

    /// The kind's name: its spelling in the fault catalogue (`domain::faults`), where its
    /// parameters and their defaults are specified.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Latency => "latency",
            FaultKind::Errors => "errors",
            FaultKind::Abort => "abort",
            FaultKind::CpuHog => "cpu_hog",
            FaultKind::Leak => "leak",
            FaultKind::NetLatency => "net_latency",
            FaultKind::NetReset => "net_reset",
            FaultKind::NetCut => "net_cut",
            FaultKind::DbDown => "db_down",
            FaultKind::CpuLimit => "cpu_limit",
        }
    }
}

/// One cell of the fault matrix: a kind, the context it strikes, and the share of calls
/// that fail where the kind is `errors` — so one profile can run a partial fault at several
/// rates, each its own cell, window and row in the report.
///
/// Written `{"kind":"errors","context":"inventory","rate":0.3}`. Read also as a profile
/// wrote a cell before the rate was a cell's parameter, `["errors","inventory"]`, and an
/// `errors` cell without a rate reads as [`RATE_BEFORE_CELLS`], the rate every such cell
/// ran at then. A rate on a kind that takes none, or outside the catalogue's range, is
/// refused when the cell is read or built, before anything is measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CellWire")]
pub struct FaultCell {
    pub kind: FaultKind,
    pub context: Context,
    /// The share of calls into the context that fail (0.01–1, the catalogue's range);
    /// always set on `errors`, `None` on every other kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// The rate of every `errors` cell before the rate was a cell's parameter: the catalogue's
/// default then, half the calls. Fixed here rather than read from the catalogue, so results
/// from then read as what ran even if the default moves.
pub const RATE_BEFORE_CELLS: f64 = 0.5;

/// The partial-fault rates the full profile runs on inventory: below, at and above half
/// the calls, to show whether a build's answer to a partial fault holds as it worsens (a
/// breaker that opens on consecutive failures trips far sooner at 70 % than at 30 %).
pub const FULL_ERROR_RATES: [f64; 3] = [0.3, 0.5, 0.7];

/// What a cell may be written as (see [`FaultCell`]).
#[derive(Deserialize)]
#[serde(untagged)]
enum CellWire {
    /// `["kill","recommendations"]`: before the rate was a cell's parameter.
    Pair(FaultKind, Context),
    Named {
        kind: FaultKind,
        context: Context,
        #[serde(default)]
        rate: Option<f64>,
    },
}

impl TryFrom<CellWire> for FaultCell {
    type Error = String;

    fn try_from(wire: CellWire) -> Result<FaultCell, String> {
        let (kind, context, rate) = match wire {
            CellWire::Pair(kind, context) => (kind, context, None),
            CellWire::Named {
                kind,
                context,
                rate,
            } => (kind, context, rate),
        };
        let rate = match (kind, rate) {
            (FaultKind::Errors, None) => Some(RATE_BEFORE_CELLS),
            (_, rate) => rate,
        };
        let cell = FaultCell {
            kind,
            context,
            rate,
        };
        cell.fault()?;
        Ok(cell)
    }
}

impl FaultCell {
    /// `kind` on `context` with the catalogue's default parameters (an `errors` cell at the
    /// catalogue's default rate).
    pub fn new(kind: FaultKind, context: Context) -> FaultCell {
        let rate = (kind == FaultKind::Errors).then(|| {
            faults::spec(kind.as_str())
                .and_then(|spec| spec.param("rate"))
                .and_then(|param| match param.range {
                    Range::Number { default, .. } => Some(default),
                    Range::Whole { .. } => None,
                })
                .unwrap_or(RATE_BEFORE_CELLS)
        });
        FaultCell {
            kind,
            context,
            rate,
        }
    }

    /// An `errors` cell: `rate` of the calls into `context` fail. Refused outside the
    /// catalogue's range.
    pub fn errors(context: Context, rate: f64) -> Result<FaultCell, String> {
        let cell = FaultCell {
            kind: FaultKind::Errors,
            context,
            rate: Some(rate),
        };
        cell.fault()?;
        Ok(cell)
    }

    /// The fault to inject, its parameters checked by the catalogue (`domain::faults`: the
    /// same check as the admin API's), the others at their defaults. Why not, where the
    /// cell's parameters do not fit its kind.
    pub fn fault(&self) -> Result<Fault, String> {
        let spec = faults::spec(self.kind.as_str())
            .ok_or_else(|| format!("{} is not in the fault catalogue", self.kind.as_str()))?;
        let params = match self.rate {
            Some(rate) => serde_json::json!({ "rate": rate }),
            None => serde_json::Value::Null,
        };
        spec.validate(&params).map_err(|error| {
            format!(
                "fault cell {} on {}: {error}",
                self.kind.as_str(),
                self.context
            )
        })
    }

    /// `errors 30 %`, `kill`: the kind with its rate, where it has one.
    pub fn kind_label(&self) -> String {
        match self.rate {
            Some(rate) => format!("{} {}", self.kind.as_str(), rate_percent(rate)),
            None => self.kind.as_str().to_owned(),
        }
    }

    /// `errors 30 % · inventory`: how the report names a cell.
    pub fn label(&self) -> String {
        format!("{} · {}", self.kind_label(), self.context)
    }

    /// `fault-errors-30pct-inventory`: a file name for the cell's chart, one per rate.
    pub fn stem(&self) -> String {
        let rate = self
            .rate
            .map(|rate| format!("-{}pct", rate_percent(rate).trim_end_matches(" %")))
            .unwrap_or_default();
        format!("fault-{}{rate}-{}", self.kind.as_str(), self.context).replace(['_', '.'], "-")
    }
}

/// `30 %`, `2.5 %`: a rate as the report writes it, with a decimal only where it needs one.
fn rate_percent(rate: f64) -> String {
    let percent = rate * 100.0;
    if (percent - percent.round()).abs() < 1e-9 {
        format!("{percent:.0} %")
    } else {
        format!("{percent:.1} %")
    }
}

/// A tenth of one core per process, for the scale experiment. On the lab's 2-core machines
/// the shop is pinned to one core (the generator has the other), and without quotas every
/// process shares it: one more replica then adds contention, not CPU (×0.92–0.96 measured).
/// Under a quota the busiest process is held at its quota while the core still has room,
/// so it is the bottleneck and one more replica of it, under the same quota, adds CPU
/// that was there to use. 0.1 keeps the quotas of the microservices' eight processes and
/// the added one (0.9 cores) under the one core, so the quota, not the core, is what limits
/// each process, with the monolith under the same per-process rule; where two processes tie
/// for the bottleneck both get a replica (1.0 cores), and a third tied one finds no room
/// and is recorded as not replicated (`experiments::scale::NotReplicated`). At a quota of 0.1 a
/// busy process runs 10 ms of every 100 ms CFS period, so latencies carry up to 90 ms of
/// throttling: the experiment reads throughput, not latency.
pub const SCALE_QUOTA_CORES: f64 = 0.1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    /// Goose users per throughput level.
    pub levels: Vec<usize>,
    #[serde(with = "millis")]
    pub level_duration: Duration,
    /// Repeats of each throughput level (medians are over these).
    pub repeats: usize,
    /// Each half (one replica, two replicas) of the scale experiment.
    #[serde(with = "millis")]
    pub scale_duration: Duration,
    /// The CPU quota (cores) the scale experiment holds each shop process to, the added one
    /// too; `None`: none, the processes share the shop's cores (and what results from
    /// before the quota read as).
    #[serde(default)]
    pub scale_quota_cores: Option<f64>,
    /// Goose users of the steady load under which deploys and faults happen.
    pub steady_users: usize,
    /// Rolling/recreate deploys in a row for the deploy storm.
    pub storm: usize,
    /// The fault matrix, one cell per window, in the order they run.
    pub faults: Vec<FaultCell>,
    #[serde(with = "millis")]
    pub fault_before: Duration,
    #[serde(with = "millis")]
    pub fault_during: Duration,
    #[serde(with = "millis")]
    pub fault_after: Duration,
    /// How long the generator drives the null endpoint (see `calibration`).
    #[serde(with = "millis")]
    pub calibration: Duration,
    /// The capacity search's open-loop ramp (see `experiments::capacity`); `None` runs the
    /// closed-loop levels alone (and is what results from before the search read as).
    #[serde(default)]
    pub capacity: Option<CapacityPlan>,
}

impl Profile {
    /// Checks what a profile asks before anything runs: every fault cell's parameters against
    /// the catalogue, so a bad rate is refused with the cell and its range, not found at
    /// the injection minutes into a run.
    pub fn check(&self) -> Result<(), String> {
        for cell in &self.faults {
            cell.fault()?;
        }
        Ok(())
    }

    /// Runs each context's `errors` cell once per rate of `rates` instead, in the place of
    /// its first one (`compare --error-rates`); the other cells stay as they are. A rate out
    /// of range is left for [`Profile::check`] to refuse.
    pub fn set_error_rates(&mut self, rates: &[f64]) {
        let mut cells: Vec<FaultCell> = Vec::new();
        for cell in &self.faults {
            if cell.kind != FaultKind::Errors {
                cells.push(*cell);
            } else if !cells
                .iter()
                .any(|seen| seen.kind == FaultKind::Errors && seen.context == cell.context)
            {
                cells.extend(rates.iter().map(|rate| FaultCell {
                    rate: Some(*rate),
                    ..*cell
                }));
            }
        }
        self.faults = cells;
    }

    pub fn quick() -> Profile {
        Profile {
            name: "quick".into(),
            levels: vec![4, 16],
            level_duration: Duration::from_secs(5),
            repeats: 1,
            scale_duration: Duration::from_secs(3),
            scale_quota_cores: Some(SCALE_QUOTA_CORES),
            steady_users: 8,
            storm: 10,
            // One cell per kind, each on the context where it teaches most; the partial
            // fault at half the calls only (the full profile runs it at three rates).
            faults: vec![
                FaultCell::new(FaultKind::Kill, Context::Recommendations),
                FaultCell::new(FaultKind::Latency, Context::Payments),
                FaultCell {
                    rate: Some(0.5),
                    ..FaultCell::new(FaultKind::Errors, Context::Inventory)
                },
            ],
            fault_before: Duration::from_millis(750),
            fault_during: Duration::from_millis(1250),
            fault_after: Duration::from_millis(1250),
            calibration: Duration::from_secs(2),
            // 20, 36, 65, 117, 210, 378, 680, 1224, 2203 journeys/s, 2 s each, stopping at
            // the first miss: coarse, to stay within the quick profile's two minutes. The
            // ninth step is there because the monolith met the eighth on 2 cores in one
            // run (its capacity was then only a floor, which the report says when it happens).
            capacity: Some(CapacityPlan {
                start_per_s: 20.0,
                factor: 1.8,
                max_steps: 9,
                step_duration: Duration::from_secs(2),
                arrivals: Arrivals::Poisson,
                max_in_flight: 256,
                slo: Slo::default(),
                // Two more steps after the first miss: the capacity is then known within
                // ×1.16 (1.8^¼) instead of ×1.8, for 4 s.
                refine_steps: 2,
            }),
        }
    }

    pub fn full() -> Profile {
        let kinds = [
            FaultKind::Kill,
            FaultKind::Pause,
            FaultKind::Latency,
            FaultKind::Errors,
            FaultKind::Abort,
            FaultKind::CpuHog,
            FaultKind::Leak,
            FaultKind::NetLatency,
            FaultKind::NetReset,
            FaultKind::NetCut,
            FaultKind::DbDown,
            FaultKind::CpuLimit,
        ];
        let targets = [
            Context::Recommendations,
            Context::Payments,
            Context::Inventory,
        ];
        Profile {
            name: "full".into(),
            levels: vec![2, 4, 8, 16, 32],
            level_duration: Duration::from_secs(30),
            repeats: 3,
            scale_duration: Duration::from_secs(30),
            // The same as quick: the quota follows from the machine, not from the length of
            // the run (see SCALE_QUOTA_CORES); longer halves only narrow the figures.
            scale_quota_cores: Some(SCALE_QUOTA_CORES),
            steady_users: 16,
            storm: 100,
            faults: full_matrix(&kinds, &targets),
            fault_before: Duration::from_secs(3),
            fault_during: Duration::from_secs(5),
            fault_after: Duration::from_secs(5),
            calibration: Duration::from_secs(10),
            // Finer steps and longer ones than quick: 100 × 1.25^k up to about 1.8k
            // journeys/s, 5 s each; at most 14 × 5 s × 3 repeats × 2 builds = 7 minutes.
            capacity: Some(CapacityPlan {
                start_per_s: 100.0,
                factor: 1.25,
                max_steps: 14,
                step_duration: Duration::from_secs(5),
                arrivals: Arrivals::Poisson,
                max_in_flight: 512,
                slo: Slo::default(),
                // Within ×1.06 (1.25^¼) after two refining steps.
                refine_steps: 2,
            }),
        }
    }
}

/// Every kind on every context, in that order; `errors` on inventory, where a partial fault
/// meets the saga's steps, once per rate of [`FULL_ERROR_RATES`] (elsewhere at the default).
fn full_matrix(kinds: &[FaultKind], targets: &[Context]) -> Vec<FaultCell> {
    let mut cells = Vec::new();
    for kind in kinds {
        for context in targets {
            match (kind, context) {
                (FaultKind::Errors, Context::Inventory) => {
                    cells.extend(FULL_ERROR_RATES.iter().map(|rate| FaultCell {
                        rate: Some(*rate),
                        ..FaultCell::new(*kind, *context)
                    }));
                }
                _ => cells.push(FaultCell::new(*kind, *context)),
            }
        }
    }
    cells
}

/// Durations as whole milliseconds in the results.
pub(crate) mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis() as u64)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let millis: u64 = serde::Deserialize::deserialize(deserializer)?;
        Ok(Duration::from_millis(millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<FaultCell, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_cell_is_read_with_its_rate_and_old_cells_read_at_the_old_rate() {
        let cell = read(r#"{"kind":"errors","context":"inventory","rate":0.3}"#).unwrap();
        assert_eq!(cell.rate, Some(0.3));
        assert_eq!(
            cell.fault().unwrap(),
            Fault::Errors { rate: 0.3 },
            "the rate is what is injected"
        );
        let written = serde_json::to_value(cell).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"kind": "errors", "context": "inventory", "rate": 0.3})
        );
        assert_eq!(serde_json::from_value::<FaultCell>(written).unwrap(), cell);
        // As a profile wrote its cells before the rate, and a cell of the new shape without
        // one: both ran at half the calls.
        for old in [
            r#"["errors","inventory"]"#,
            r#"{"kind":"errors","context":"inventory"}"#,
        ] {
            assert_eq!(read(old).unwrap().rate, Some(RATE_BEFORE_CELLS), "{old}");
        }
        let kill = read(r#"["kill","recommendations"]"#).unwrap();
        assert_eq!((kill.kind, kill.rate), (FaultKind::Kill, None));
        assert_eq!(
            serde_json::to_value(kill).unwrap(),
            serde_json::json!({"kind": "kill", "context": "recommendations"}),
            "no rate is written where the kind takes none"
        );
    }

    #[test]
    fn a_bad_rate_is_refused_with_the_cell_and_the_range() {
        for bad in [
            r#"{"kind":"errors","context":"inventory","rate":0}"#,
            r#"{"kind":"errors","context":"inventory","rate":1.5}"#,
            r#"{"kind":"errors","context":"inventory","rate":"half"}"#,
            r#"{"kind":"kill","context":"inventory","rate":0.5}"#,
        ] {
            assert!(read(bad).is_err(), "{bad} was read");
        }
        let error = FaultCell::errors(Context::Inventory, 1.5).unwrap_err();
        assert!(
            error.contains("errors on inventory") && error.contains("between 0.01 and 1"),
            "{error}"
        );
        let mut profile = Profile::quick();
        assert_eq!(profile.check(), Ok(()));
        profile.faults.push(FaultCell {
            rate: Some(0.0),
            ..FaultCell::new(FaultKind::Errors, Context::Payments)
        });
        assert!(profile.check().unwrap_err().contains("payments"));
    }

    #[test]
    fn the_full_profile_runs_errors_on_inventory_at_three_rates_and_quick_at_one() {
        let rates = |profile: &Profile| -> Vec<Option<f64>> {
            profile
                .faults
                .iter()
                .filter(|cell| cell.kind == FaultKind::Errors && cell.context == Context::Inventory)
                .map(|cell| cell.rate)
                .collect()
        };
        let full = Profile::full();
        assert_eq!(rates(&full), [Some(0.3), Some(0.5), Some(0.7)]);
        assert_eq!(full.check(), Ok(()));
        // Every other kind still once on each of the three contexts.
        assert_eq!(full.faults.len(), FaultKind::ALL.len() * 3 + 2);
        let quick = Profile::quick();
        assert_eq!(rates(&quick), [Some(0.5)]);
        assert_eq!(quick.faults.len(), 3, "the quick profile is not lengthened");
    }

    #[test]
    fn error_rates_replace_each_contexts_errors_cells_in_place_and_leave_the_others() {
        let mut quick = Profile::quick();
        quick.set_error_rates(&[0.3, 0.7]);
        let cells: Vec<String> = quick.faults.iter().map(FaultCell::label).collect();
        assert_eq!(
            cells,
            [
                "kill · recommendations",
                "latency · payments",
                "errors 30 % · inventory",
                "errors 70 % · inventory",
            ]
        );
        let mut full = Profile::full();
        full.set_error_rates(&[0.9]);
        let errors: Vec<String> = full
            .faults
            .iter()
            .filter(|cell| cell.kind == FaultKind::Errors)
            .map(FaultCell::label)
            .collect();
        assert_eq!(
            errors,
            [
                "errors 90 % · recommendations",
                "errors 90 % · payments",
                "errors 90 % · inventory",
            ]
        );
        assert_eq!(full.faults.len(), FaultKind::ALL.len() * 3);
        full.set_error_rates(&[2.0]);
        assert!(
            full.check().is_err(),
            "a bad rate is left for check to refuse"
        );
    }

    #[test]
    fn each_rate_has_its_own_label_and_chart() {
        let cells: Vec<FaultCell> = [0.3, 0.5, 0.7, 0.025]
            .into_iter()
            .map(|rate| FaultCell::errors(Context::Inventory, rate).unwrap())
            .collect();
        let labels: Vec<String> = cells.iter().map(FaultCell::label).collect();
        assert_eq!(
            labels,
            [
                "errors 30 % · inventory",
                "errors 50 % · inventory",
                "errors 70 % · inventory",
                "errors 2.5 % · inventory",
            ]
        );
        let stems: Vec<String> = cells.iter().map(FaultCell::stem).collect();
        assert_eq!(
            stems,
            [
                "fault-errors-30pct-inventory",
                "fault-errors-50pct-inventory",
                "fault-errors-70pct-inventory",
                "fault-errors-2-5pct-inventory",
            ]
        );
        let kill = FaultCell::new(FaultKind::CpuHog, Context::Payments);
        assert_eq!(
            (kill.label(), kill.stem()),
            (
                "cpu_hog · payments".to_owned(),
                "fault-cpu-hog-payments".to_owned()
            )
        );
    }

    #[test]
    fn every_kind_the_lab_injects_is_specified_in_the_fault_catalogue() {
        for kind in FaultKind::ALL {
            assert!(
                domain::faults::spec(kind.as_str()).is_some(),
                "{} is not in domain::faults::catalogue()",
                kind.as_str()
            );
        }
    }
}

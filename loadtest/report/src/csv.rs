//! The CSV files of a run: one per experiment, and the timelines of every experiment.
//!
//! Each row is a small serializable struct written by the `csv` crate, which quotes a field
//! holding a comma, a quote or a line break; the header is the struct's field names. A
//! figure not measured is an empty field, never a zero: a latency where nothing succeeded
//! is empty, since the latencies are of successful requests only.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use loadtest_results::Results;
use loadtest_results::analysis::Timeline;
use loadtest_results::experiments::Findings;

#[derive(Default, Serialize)]
struct ThroughputRow<'a> {
    build: &'a str,
    users: usize,
    repeat: usize,
    requests: usize,
    requests_per_s: f64,
    error_rate: f64,
    p50_us: Option<u64>,
    p95_us: Option<u64>,
    p99_us: Option<u64>,
    corrected_p50_us: Option<u64>,
    corrected_p99_us: Option<u64>,
    sut_cpu_s: Option<f64>,
    sut_peak_rss_mib: Option<f64>,
    requests_per_sut_cpu_s: Option<f64>,
    generator_cpu_share: f64,
    generator_limited: bool,
}

#[derive(Default, Serialize)]
struct FaultRow<'a> {
    build: &'a str,
    kind: &'a str,
    /// The share of calls that failed (`errors` cells only): one row set per rate.
    rate: Option<f64>,
    context: &'a str,
    process: &'a str,
    journey: &'a str,
    before_success: Option<f64>,
    during_success: Option<f64>,
    after_success: Option<f64>,
    before_p99_us: Option<u64>,
    during_p99_us: Option<u64>,
    after_p99_us: Option<u64>,
    blast_radius: f64,
    time_to_recover_ms: Option<u64>,
    restarts: usize,
    /// The longest a process was down before the platform's restart policy had it back.
    healed_in_ms: Option<u64>,
    /// Retry amplification into the faulted context during the fault (microservices).
    attempts_per_call: Option<f64>,
    /// The calls that amplification is over.
    hop_calls: Option<u64>,
}

#[derive(Default, Serialize)]
struct ScaleRow<'a> {
    build: &'a str,
    component: &'a str,
    users: usize,
    replicas: usize,
    requests_per_s: f64,
    error_rate: f64,
    p99_us: Option<u64>,
    sut_cpu_s: Option<f64>,
    requests_per_sut_cpu_s: Option<f64>,
    /// The busiest replica's share over an even one, where the balancer counted them
    /// (the half with more than one replica).
    imbalance: Option<f64>,
    /// The CPU quota every process was held to (cores); empty where none was.
    quota_cores: Option<f64>,
    /// The scaled component's CPU over what its quota allowed, in the first half.
    utilisation: Option<f64>,
    /// The added processes (`catalog#2 + gateway#2`, the half with more than one replica),
    /// and their quotas and memory together.
    added: Option<String>,
    added_cpu_cores: Option<f64>,
    added_rss_mib: Option<f64>,
    /// Successful req/s gained, and that per added core and per added MiB.
    gained_per_s: Option<f64>,
    gain_per_cpu: Option<f64>,
    gain_per_mib: Option<f64>,
}

#[derive(Default, Serialize)]
struct DeployRow<'a> {
    build: &'a str,
    component: &'a str,
    strategy: &'a str,
    time_to_ready_ms: u64,
    requests: usize,
    failed_requests: usize,
}

#[derive(Default, Serialize)]
struct NodeRow<'a> {
    build: &'a str,
    kind: &'a str,
    node: &'a str,
    tasks: usize,
    recovered_ms: u64,
    requests: usize,
    failed_requests: usize,
    error: Option<&'a str>,
}

#[derive(Default, Serialize)]
struct TimelineRow<'a> {
    build: &'a str,
    experiment: String,
    t_ms: u64,
    slice_ms: u64,
    journey: &'a str,
    ok: usize,
    fail: usize,
    maybe_applied: usize,
    p50_us: Option<u64>,
    p99_us: Option<u64>,
}

/// One constant-rate step of a capacity ramp (open-loop load), and whether it met the SLO.
#[derive(Default, Serialize)]
struct CapacityRow<'a> {
    build: &'a str,
    repeat: usize,
    step: usize,
    offered_per_s: f64,
    due: usize,
    started: usize,
    dropped: usize,
    requests: usize,
    errors: usize,
    ok_per_s: f64,
    /// Of successes, from the moment each request was due.
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    generator_cpu_share: f64,
    generator_limited: bool,
    met_slo: bool,
    /// The SLO clauses the step missed, `; `-separated.
    missed: String,
    /// The ramp's sustained rate (the same on every step of the ramp).
    ramp_sustained_per_s: Option<f64>,
}

/// One CSV file being written, of rows of type `R`.
struct Table<R> {
    name: &'static str,
    writer: ::csv::Writer<std::fs::File>,
    rows: usize,
    row_type: std::marker::PhantomData<R>,
}

impl<R: Serialize + Default> Table<R> {
    fn create(dir: &Path, name: &'static str) -> anyhow::Result<Table<R>> {
        let writer =
            ::csv::Writer::from_path(dir.join(name)).with_context(|| format!("create {name}"))?;
        Ok(Table {
            name,
            writer,
            rows: 0,
            row_type: std::marker::PhantomData,
        })
    }

    fn row(&mut self, row: R) -> anyhow::Result<()> {
        self.rows += 1;
        self.writer
            .serialize(row)
            .with_context(|| format!("write a row of {}", self.name))
    }

    /// Flushes the file; a table without rows still gets its header line.
    fn finish(mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            self.writer
                .write_record(&header::<R>()?)
                .with_context(|| format!("write {}", self.name))?;
        }
        self.writer
            .flush()
            .with_context(|| format!("write {}", self.name))
    }
}

/// The header line the `csv` crate writes for rows of type `R`: their field names, read by
/// serializing a default row (the crate writes a header only before a first row).
fn header<R: Serialize + Default>() -> anyhow::Result<::csv::StringRecord> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.serialize(R::default())?;
    let bytes = writer
        .into_inner()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
    Ok(reader.headers()?.clone())
}

pub(crate) fn write(dir: &Path, results: &Results) -> anyhow::Result<()> {
    let mut throughput = Table::<ThroughputRow>::create(dir, "throughput.csv")?;
    let mut capacity = Table::<CapacityRow>::create(dir, "capacity.csv")?;
    let mut faults = Table::<FaultRow>::create(dir, "faults.csv")?;
    let mut deploys = Table::<DeployRow>::create(dir, "deploys.csv")?;
    let mut scaling = Table::<ScaleRow>::create(dir, "scale.csv")?;
    let mut nodes = Table::<NodeRow>::create(dir, "nodes.csv")?;
    let mut timeline = Table::<TimelineRow>::create(dir, "timeline.csv")?;
    for outcome in &results.experiments {
        // The topology: `monolith` and `micro` for the two builds, as the column always held.
        let build = outcome.topology_name();
        match &outcome.findings {
            Findings::Throughput {
                levels,
                capacity: found,
            } => {
                for ramp in found.iter().flat_map(|found| &found.ramps) {
                    for (index, step) in ramp.steps.iter().enumerate() {
                        capacity.row(CapacityRow {
                            build,
                            repeat: ramp.repeat,
                            step: index + 1,
                            offered_per_s: round(step.offered_per_s, 2),
                            due: step.due,
                            started: step.started,
                            dropped: step.dropped,
                            requests: step.requests,
                            errors: step.errors,
                            ok_per_s: round(step.ok_per_s, 1),
                            p50_us: step.p50_us,
                            p99_us: step.p99_us,
                            generator_cpu_share: round(step.generator_cpu_share, 3),
                            generator_limited: step.generator_limited,
                            met_slo: step.met,
                            missed: step.missed.join("; "),
                            ramp_sustained_per_s: ramp.sustained_per_s,
                        })?;
                    }
                }
                for level in levels {
                    let succeeded = level.requests > level.errors;
                    let measured = |us: u64| succeeded.then_some(us);
                    throughput.row(ThroughputRow {
                        build,
                        users: level.users,
                        repeat: level.repeat,
                        requests: level.requests,
                        requests_per_s: round(level.requests_per_s, 1),
                        error_rate: round(level.error_rate, 4),
                        p50_us: measured(level.raw.p50_us),
                        p95_us: measured(level.raw.p95_us),
                        p99_us: measured(level.raw.p99_us),
                        corrected_p50_us: measured(level.corrected.p50_us),
                        corrected_p99_us: measured(level.corrected.p99_us),
                        sut_cpu_s: level.sut_cpu_s.map(|value| round(value, 3)),
                        sut_peak_rss_mib: level.sut_peak_rss_mib.map(|value| round(value, 1)),
                        requests_per_sut_cpu_s: level
                            .requests_per_sut_cpu_s
                            .map(|value| round(value, 1)),
                        generator_cpu_share: round(level.generator_cpu_share, 3),
                        generator_limited: level.generator_limited,
                    })?;
                    let experiment = format!("throughput-{}u-r{}", level.users, level.repeat);
                    timeline_rows(&mut timeline, build, &experiment, &level.timeline)?;
                }
            }
            Findings::Faults {
                cells,
                timeline: slices,
            } => {
                timeline_rows(&mut timeline, build, "faults", slices)?;
                for cell in cells {
                    for phases in &cell.journeys {
                        faults.row(FaultRow {
                            build,
                            kind: cell.fault.kind.as_str(),
                            rate: cell.fault.rate,
                            context: cell.fault.context.as_str(),
                            process: &cell.process,
                            journey: &phases.journey,
                            before_success: phases.before.success_rate.map(|value| round(value, 4)),
                            during_success: phases.during.success_rate.map(|value| round(value, 4)),
                            after_success: phases.after.success_rate.map(|value| round(value, 4)),
                            before_p99_us: p99_of(&phases.before),
                            during_p99_us: p99_of(&phases.during),
                            after_p99_us: p99_of(&phases.after),
                            blast_radius: round(cell.blast_radius, 3),
                            time_to_recover_ms: cell.time_to_recover_ms,
                            restarts: cell.restarts,
                            healed_in_ms: cell.healed_in_ms,
                            attempts_per_call: cell
                                .attempts_per_call
                                .map(|attempts| round(attempts, 3)),
                            hop_calls: cell.hop_calls,
                        })?;
                    }
                }
            }
            Findings::Scale(scale) => {
                let imbalance = scale.spread.as_ref().and_then(|spread| spread.imbalance());
                let utilisation = scale
                    .utilisation
                    .iter()
                    .find(|used| used.process == scale.component)
                    .map(|used| round(used.utilisation, 3));
                for (half, second) in [(&scale.before, false), (&scale.after, true)] {
                    let gain = scale.gain.as_ref().filter(|_| second);
                    scaling.row(ScaleRow {
                        build,
                        component: &scale.component,
                        users: scale.users,
                        replicas: half.replicas,
                        requests_per_s: round(half.requests_per_s, 1),
                        error_rate: round(half.error_rate, 4),
                        p99_us: (half.error_rate < 1.0 && half.requests_per_s > 0.0)
                            .then_some(half.latency.p99_us),
                        sut_cpu_s: half.sut_cpu_s.map(|value| round(value, 3)),
                        requests_per_sut_cpu_s: half
                            .requests_per_sut_cpu_s
                            .map(|value| round(value, 1)),
                        imbalance: imbalance.filter(|_| second).map(|value| round(value, 3)),
                        quota_cores: scale.quota.cores,
                        utilisation: utilisation.filter(|_| !second),
                        added: second.then(|| scale.added_processes()),
                        added_cpu_cores: scale.added_cpu_cores().filter(|_| second),
                        added_rss_mib: scale
                            .added_rss_mib()
                            .filter(|_| second)
                            .map(|mib| round(mib, 1)),
                        gained_per_s: gain.map(|gain| round(gain.requests_per_s, 1)),
                        gain_per_cpu: gain
                            .and_then(|gain| gain.per_cpu)
                            .map(|value| round(value, 1)),
                        gain_per_mib: gain
                            .and_then(|gain| gain.per_mib)
                            .map(|value| round(value, 3)),
                    })?;
                }
            }
            Findings::Nodes(found) => {
                timeline_rows(&mut timeline, build, "nodes", &found.timeline)?;
                for event in &found.events {
                    nodes.row(NodeRow {
                        build,
                        kind: &event.kind,
                        node: &event.node,
                        tasks: event.tasks.len(),
                        recovered_ms: event.recovered_ms,
                        requests: event.requests,
                        failed_requests: event.failed_requests,
                        error: event.error.as_deref(),
                    })?;
                }
            }
            Findings::Deploy(found) => {
                timeline_rows(&mut timeline, build, "deploy", &found.timeline)?;
                for deploy in &found.each {
                    deploys.row(DeployRow {
                        build,
                        component: &deploy.component,
                        strategy: &deploy.strategy,
                        time_to_ready_ms: deploy.time_to_ready_ms,
                        requests: deploy.requests,
                        failed_requests: deploy.failed_requests,
                    })?;
                }
            }
        }
    }
    throughput.finish()?;
    capacity.finish()?;
    faults.finish()?;
    deploys.finish()?;
    scaling.finish()?;
    nodes.finish()?;
    timeline.finish()
}

/// A window's p99 of successes; empty when nothing in it succeeded.
fn p99_of(window: &loadtest_results::analysis::WindowStats) -> Option<u64> {
    window.success_latency().map(|latency| latency.p99_us)
}

/// `value` to `places` decimals, so a sum of CPU seconds reads `10.13`, not
/// `10.130000000000003`: the places the figures were measured to.
fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

fn timeline_rows<'a>(
    table: &mut Table<TimelineRow<'a>>,
    build: &'a str,
    experiment: &str,
    timeline: &'a Timeline,
) -> anyhow::Result<()> {
    for slice in &timeline.slices {
        table.row(TimelineRow {
            build,
            experiment: experiment.to_owned(),
            t_ms: slice.t_ms,
            slice_ms: timeline.slice_ms,
            journey: &slice.journey,
            ok: slice.ok,
            fail: slice.fail,
            maybe_applied: slice.maybe_applied,
            p50_us: (slice.ok > 0).then_some(slice.p50_us),
            p99_us: (slice.ok > 0).then_some(slice.p99_us),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest_results::analysis::Slice;

    #[test]
    fn a_field_with_a_comma_and_quotes_round_trips_through_the_csv() {
        let journey = r#"browse, then "buy""#;
        let timeline = Timeline {
            slice_ms: 250,
            slices: vec![Slice {
                t_ms: 500,
                journey: journey.to_owned(),
                ok: 3,
                fail: 1,
                maybe_applied: 0,
                p50_us: 1200,
                p99_us: 4800,
                timed_out: 0,
            }],
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut table = Table::create(dir.path(), "timeline.csv").expect("create");
        timeline_rows(&mut table, "micro", "faults", &timeline).expect("rows");
        table.finish().expect("flush");

        let mut reader =
            ::csv::Reader::from_path(dir.path().join("timeline.csv")).expect("read back");
        let header: Vec<String> = reader
            .headers()
            .expect("a header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header[4], "journey");
        let rows: Vec<::csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .expect("every row parses");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].len(),
            header.len(),
            "the comma did not add a column"
        );
        assert_eq!(&rows[0][4], journey);
        assert_eq!(&rows[0][2], "500");
    }

    #[test]
    fn a_latency_where_nothing_succeeded_is_an_empty_field_not_a_zero() {
        let slice = |t_ms, ok, p99_us| Slice {
            t_ms,
            journey: "buy".to_owned(),
            ok,
            fail: 4,
            maybe_applied: 0,
            p50_us: p99_us / 2,
            p99_us,
            timed_out: 0,
        };
        let timeline = Timeline {
            slice_ms: 250,
            slices: vec![slice(0, 0, 0), slice(250, 3, 900)],
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut table = Table::create(dir.path(), "timeline.csv").expect("create");
        timeline_rows(&mut table, "monolith", "faults", &timeline).expect("rows");
        table.finish().expect("flush");
        let mut reader =
            ::csv::Reader::from_path(dir.path().join("timeline.csv")).expect("read back");
        let p99 = reader
            .headers()
            .expect("a header")
            .iter()
            .position(|name| name == "p99_us")
            .expect("a p99 column");
        let rows: Vec<::csv::StringRecord> = reader
            .records()
            .collect::<Result<_, _>>()
            .expect("every row parses");
        assert_eq!(&rows[0][p99], "", "no success: no latency");
        assert_eq!(&rows[1][p99], "900");
    }

    #[test]
    fn a_table_without_rows_still_has_its_header() {
        let dir = tempfile::tempdir().expect("temp dir");
        Table::<DeployRow>::create(dir.path(), "deploys.csv")
            .expect("create")
            .finish()
            .expect("finish");
        let text = std::fs::read_to_string(dir.path().join("deploys.csv")).expect("written");
        assert_eq!(
            text,
            "build,component,strategy,time_to_ready_ms,requests,failed_requests\n"
        );
    }

    #[test]
    fn figures_are_written_to_the_places_they_were_measured_to() {
        assert_eq!(round(10.130000000000003, 3).to_string(), "10.13");
        assert_eq!(round(953.4390599086117, 1).to_string(), "953.4");
        assert_eq!(round(0.30878863, 3).to_string(), "0.309");
    }
}

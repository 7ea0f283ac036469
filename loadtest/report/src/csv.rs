//! The CSV files of a run: one per experiment, and the timelines of every experiment.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use loadtest_results::Results;
use loadtest_results::analysis::Timeline;
use loadtest_results::experiments::Findings;

pub(crate) fn write(dir: &Path, results: &Results) -> anyhow::Result<()> {
    let mut throughput = String::from(
        "build,users,repeat,requests,requests_per_s,error_rate,p50_us,p95_us,p99_us,\
         corrected_p50_us,corrected_p99_us,sut_cpu_s,sut_peak_rss_mib,requests_per_sut_cpu_s,\
         generator_cpu_share,generator_limited\n",
    );
    let mut faults = String::from(
        "build,kind,context,process,journey,before_success,during_success,after_success,\
         before_p99_us,during_p99_us,after_p99_us,blast_radius,time_to_recover_ms,restarts\n",
    );
    let mut scaling = String::from(
        "build,component,users,replicas,requests_per_s,error_rate,p99_us,sut_cpu_s,requests_per_sut_cpu_s\n",
    );
    let mut deploys =
        String::from("build,component,strategy,time_to_ready_ms,requests,failed_requests\n");
    let mut timeline = String::from(
        "build,experiment,t_ms,slice_ms,journey,ok,fail,maybe_applied,p50_us,p99_us\n",
    );
    // A figure not measured is an empty field.
    let fixed = |value: Option<f64>, places: usize| crate::figures::figure(value, places, "");
    let rate = |rate: Option<f64>| fixed(rate, 4);
    for outcome in &results.experiments {
        let build = outcome.build.as_str();
        match &outcome.findings {
            Findings::Throughput { levels, .. } => {
                for level in levels {
                    writeln!(
                        throughput,
                        "{build},{},{},{},{:.1},{:.4},{},{},{},{},{},{},{},{},{:.3},{}",
                        level.users,
                        level.repeat,
                        level.requests,
                        level.requests_per_s,
                        level.error_rate,
                        level.raw.p50_us,
                        level.raw.p95_us,
                        level.raw.p99_us,
                        level.corrected.p50_us,
                        level.corrected.p99_us,
                        fixed(level.sut_cpu_s, 3),
                        fixed(level.sut_peak_rss_mib, 1),
                        fixed(level.requests_per_sut_cpu_s, 1),
                        level.generator_cpu_share,
                        level.generator_limited
                    )?;
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
                        writeln!(
                            faults,
                            "{build},{},{},{},{},{},{},{},{},{},{},{:.3},{},{}",
                            cell.kind.as_str(),
                            cell.context,
                            cell.process,
                            phases.journey,
                            rate(phases.before.success_rate),
                            rate(phases.during.success_rate),
                            rate(phases.after.success_rate),
                            phases.before.latency.p99_us,
                            phases.during.latency.p99_us,
                            phases.after.latency.p99_us,
                            cell.blast_radius,
                            cell.time_to_recover_ms
                                .map_or(String::new(), |ms| ms.to_string()),
                            cell.restarts
                        )?;
                    }
                }
            }
            Findings::Scale(scale) => {
                for half in [&scale.before, &scale.after] {
                    writeln!(
                        scaling,
                        "{build},{},{},{},{:.1},{:.4},{},{},{}",
                        scale.component,
                        scale.users,
                        half.replicas,
                        half.requests_per_s,
                        half.error_rate,
                        half.latency.p99_us,
                        fixed(half.sut_cpu_s, 3),
                        fixed(half.requests_per_sut_cpu_s, 1)
                    )?;
                }
            }
            Findings::Deploy(found) => {
                timeline_rows(&mut timeline, build, "deploy", &found.timeline)?;
                for deploy in &found.each {
                    writeln!(
                        deploys,
                        "{build},{},{},{},{},{}",
                        deploy.component,
                        deploy.strategy,
                        deploy.time_to_ready_ms,
                        deploy.requests,
                        deploy.failed_requests
                    )?;
                }
            }
        }
    }
    for (name, text) in [
        ("throughput.csv", throughput),
        ("faults.csv", faults),
        ("deploys.csv", deploys),
        ("scale.csv", scaling),
        ("timeline.csv", timeline),
    ] {
        std::fs::write(dir.join(name), text).with_context(|| format!("write {name}"))?;
    }
    Ok(())
}

fn timeline_rows(
    csv: &mut String,
    build: &str,
    experiment: &str,
    timeline: &Timeline,
) -> std::fmt::Result {
    for slice in &timeline.slices {
        writeln!(
            csv,
            "{build},{experiment},{},{},{},{},{},{},{},{}",
            slice.t_ms,
            timeline.slice_ms,
            slice.journey,
            slice.ok,
            slice.fail,
            slice.maybe_applied,
            slice.p50_us,
            slice.p99_us
        )?;
    }
    Ok(())
}

//! Load from several generators, joined into one run.
//!
//! Goose runs one attack per process and no longer has a distributed mode (Gaggle was
//! removed in 0.17), so a load bigger than one machine's is written here: the platform runs
//! `shoplab load` several times, one generator per node (`Platform::run_generators`), and
//! the lab joins what they measured.
//!
//! - Each generator runs its [`Share`]: its part of the users and of the rate ceiling, and a
//!   slice of the seeded users of its own (no two sessions share one cart); all start at an
//!   agreed wall-clock time (`--start-at`).
//! - Each writes a shard ([`write_shard`]): a header line — who, when it started by the
//!   wall clock, how long it ran, its own CPU, its coordinated-omission-corrected latency
//!   histogram (HDR's V2 encoding, base64) — and one line per request, as `history.jsonl`.
//! - [`merge`] joins shards: records shifted onto one clock by each generator's start,
//!   histograms added (HDR histograms of the same bounds add without loss, so the merged
//!   percentiles are those of all requests, not an average of percentiles), CPU summed and
//!   kept per generator.
//!
//! One clock: the generators' wall clocks must agree. On one machine they are the same
//! clock; across machines, as well as NTP keeps them (typically a millisecond or better on
//! a LAN), which is finer than the one-second slices the timelines use.

use std::io::Write;
use std::str::FromStr;

use anyhow::Context as _;
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::load::LoadRun;
use loadtest_results::experiments::throughput::GeneratorUsage;
use loadtest_results::history::RequestRecord;

/// Generator `index` of `of` (1-based, as Swarm numbers a service's task slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub of: usize,
}

impl FromStr for Share {
    type Err = String;

    fn from_str(text: &str) -> Result<Share, String> {
        let parsed = text.split_once('/').and_then(|(index, of)| {
            Some(Share {
                index: index.trim().parse().ok()?,
                of: of.trim().parse().ok()?,
            })
        });
        match parsed {
            Some(share) if share.of >= 1 && (1..=share.of).contains(&share.index) => Ok(share),
            _ => Err(format!(
                "{text:?} is not a generator's share: K/N with 1 <= K <= N, e.g. 2/3"
            )),
        }
    }
}

impl Share {
    /// `I/N` with `0 <= I < N`: share `I+1` of `N`, for platforms that number from 0.
    pub fn from_zero_based(text: &str) -> Result<Share, String> {
        let parsed = text.split_once('/').and_then(|(index, of)| {
            Some((
                index.trim().parse::<usize>().ok()?,
                of.trim().parse::<usize>().ok()?,
            ))
        });
        match parsed {
            Some((index, of)) if index < of => Ok(Share {
                index: index + 1,
                of,
            }),
            _ => Err(format!(
                "{text:?} is not a generator's index: I/N with 0 <= I < N, e.g. 0/3"
            )),
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl Share {
    /// This generator's part of `total`: an even split, the first `total % of` generators
    /// taking one more, so the parts add up to `total` exactly.
    pub fn part(&self, total: usize) -> usize {
        total / self.of + usize::from(self.index <= total % self.of)
    }

    /// How many of `total` the generators before this one take: where its users start.
    pub fn before(&self, total: usize) -> usize {
        (1..self.index)
            .map(|index| Share { index, of: self.of }.part(total))
            .sum()
    }
}

/// The first line of a shard.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardHeader {
    /// The generator's host name (its container's, inside a cluster).
    pub generator: String,
    pub share: String,
    /// When its load started, by its wall clock.
    pub started_unix_ms: u64,
    pub wall_s: f64,
    pub generator_cpu_s: f64,
    /// The cores it was given, for its CPU share.
    pub cores: f64,
    /// The corrected latency histogram: HDR V2 (deflate) encoding, base64.
    pub corrected: String,
    /// Request lines that follow.
    pub records: usize,
}

/// What a shard's header line is wrapped in, so a line of it is never taken for a record.
#[derive(Serialize, Deserialize)]
struct HeaderLine {
    shard: ShardHeader,
}

/// One generator's measurements, read back.
#[derive(Debug)]
pub struct Shard {
    pub header: ShardHeader,
    pub corrected: Histogram<u64>,
    pub records: Vec<RequestRecord>,
}

/// Writes `run` as a shard: the header line, then one line per request.
pub fn write_shard(
    out: &mut impl Write,
    generator: &str,
    share: Share,
    started_unix_ms: u64,
    cores: f64,
    run: &LoadRun,
) -> anyhow::Result<()> {
    let header = HeaderLine {
        shard: ShardHeader {
            generator: generator.to_owned(),
            share: share.to_string(),
            started_unix_ms,
            wall_s: run.wall_s,
            generator_cpu_s: run.generator_cpu_s,
            cores,
            corrected: encode(&run.corrected)?,
            records: run.records.len(),
        },
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    for record in &run.records {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads a shard from a generator's stdout; lines before the header are not the shard's.
/// A shard with fewer request lines than its header announces is refused (a log cut short
/// would otherwise pass for a slower generator).
pub fn read_shard(text: &str) -> anyhow::Result<Shard> {
    let mut lines = text.lines();
    let header = lines
        .by_ref()
        .find_map(|line| serde_json::from_str::<HeaderLine>(line).ok())
        .context("no shard header in the generator's output")?
        .shard;
    let records: Vec<RequestRecord> = lines
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).with_context(|| {
                format!("request line {} of {}'s shard", index + 1, header.generator)
            })
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(
        records.len() == header.records,
        "{}'s shard holds {} requests, its header says {}: the output was cut short",
        header.generator,
        records.len(),
        header.records
    );
    Ok(Shard {
        corrected: decode(&header.corrected)
            .with_context(|| format!("{}'s latency histogram", header.generator))?,
        header,
        records,
    })
}

/// Several generators' shards as one run on the clock that starts at `epoch_unix_ms` (the
/// lab's, for the level), with each generator's part.
#[derive(Debug)]
pub struct Merged {
    pub run: LoadRun,
    pub generators: Vec<GeneratorUsage>,
    /// The busiest generator's CPU share.
    pub busiest_share: f64,
}

pub fn merge(shards: Vec<Shard>, names: &[String], epoch_unix_ms: u64) -> anyhow::Result<Merged> {
    anyhow::ensure!(!shards.is_empty(), "no generator reported");
    let first = shards
        .iter()
        .map(|shard| shard.header.started_unix_ms)
        .min()
        .unwrap_or(epoch_unix_ms);
    let end = shards
        .iter()
        .map(|shard| shard.header.started_unix_ms as f64 + shard.header.wall_s * 1000.0)
        .fold(0.0, f64::max);
    let mut corrected = loadtest_results::latency::latency_histogram();
    let mut records = Vec::with_capacity(shards.iter().map(|shard| shard.records.len()).sum());
    let mut generators = Vec::new();
    let mut cpu_s = 0.0;
    for (index, shard) in shards.into_iter().enumerate() {
        let header = &shard.header;
        corrected
            .add(&shard.corrected)
            .with_context(|| format!("add {}'s histogram", header.generator))?;
        // Each generator's records count from its own start; the lab's from its epoch.
        let offset = header.started_unix_ms as i64 - epoch_unix_ms as i64;
        records.extend(shard.records.into_iter().map(|mut record| {
            record.t_ms = (record.t_ms as i64 + offset).max(0) as u64;
            record
        }));
        cpu_s += header.generator_cpu_s;
        generators.push(GeneratorUsage {
            generator: names
                .get(index)
                .cloned()
                .unwrap_or_else(|| header.generator.clone()),
            share: header.share.clone(),
            started_after_ms: header.started_unix_ms - first,
            wall_s: header.wall_s,
            requests: header.records,
            cpu_s: header.generator_cpu_s,
            cpu_share: header.generator_cpu_s
                / (header.wall_s.max(0.001) * header.cores.max(0.001)),
        });
    }
    records.sort_by_key(|record| record.t_ms);
    let busiest_share = generators
        .iter()
        .map(|generator| generator.cpu_share)
        .fold(0.0, f64::max);
    Ok(Merged {
        run: LoadRun {
            records,
            corrected,
            generator_cpu_s: cpu_s,
            // From the first start to the last end: the span the requests were sent in.
            wall_s: (end - first as f64) / 1000.0,
        },
        generators,
        busiest_share,
    })
}

fn encode(histogram: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|error| anyhow::anyhow!("encode a latency histogram: {error:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("not base64")?;
    let decoded: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| anyhow::anyhow!("not an HDR histogram: {error:?}"))?;
    // Into the lab's bounds, so histograms of every generator add.
    let mut histogram = loadtest_results::latency::latency_histogram();
    histogram
        .add(&decoded)
        .context("a histogram outside the lab's bounds")?;
    Ok(histogram)
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest_results::history::Outcome;
    use loadtest_results::latency::{Percentiles, latency_histogram};

    fn record(t_ms: u64, latency_us: u64) -> RequestRecord {
        RequestRecord {
            t_ms,
            journey: "browse".into(),
            transaction: "GET /api/products".into(),
            status: 200,
            latency_us,
            outcome: Outcome::Ok,
            timed_out: false,
            idempotency_key: None,
            order_id: None,
            total_cents: None,
            user: None,
        }
    }

    fn run(latencies: &[u64], cpu_s: f64) -> LoadRun {
        let mut corrected = latency_histogram();
        for latency in latencies {
            corrected.record(*latency).expect("in bounds");
        }
        LoadRun {
            records: latencies
                .iter()
                .enumerate()
                .map(|(index, latency)| record(index as u64 * 10, *latency))
                .collect(),
            corrected,
            generator_cpu_s: cpu_s,
            wall_s: 2.0,
        }
    }

    fn shard(run: &LoadRun, share: Share, started_unix_ms: u64) -> Shard {
        let mut out = Vec::new();
        write_shard(&mut out, "gen", share, started_unix_ms, 1.0, run).expect("writes");
        read_shard(&String::from_utf8(out).expect("utf-8")).expect("reads back")
    }

    #[test]
    fn shares_split_every_user_once_and_start_where_the_one_before_ends() {
        let shares: Vec<Share> = (1..=3).map(|index| Share { index, of: 3 }).collect();
        assert_eq!(
            shares.iter().map(|share| share.part(8)).collect::<Vec<_>>(),
            [3, 3, 2]
        );
        assert_eq!(
            shares
                .iter()
                .map(|share| share.before(8))
                .collect::<Vec<_>>(),
            [0, 3, 6]
        );
        assert_eq!("2/3".parse::<Share>(), Ok(Share { index: 2, of: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Share>().is_err(), "{bad} accepted");
        }
        // Kubernetes' 0-based index names the same shares.
        assert_eq!(Share::from_zero_based("0/3"), Ok(Share { index: 1, of: 3 }));
        assert_eq!(Share::from_zero_based("2/3"), Ok(Share { index: 3, of: 3 }));
        for bad in ["3/3", "-1/3", "0/0", "1"] {
            assert!(Share::from_zero_based(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn merged_histograms_give_the_percentiles_of_every_request_not_an_average() {
        // One fast generator and one slow one: the merged p99 is the slow one's tail, which
        // an average of the two p99s would halve.
        let fast = run(&[1_000; 99], 1.0);
        let slow = run(&[100_000; 10], 0.5);
        let merged = merge(
            vec![
                shard(&fast, Share { index: 1, of: 2 }, 1_000_000),
                shard(&slow, Share { index: 2, of: 2 }, 1_000_250),
            ],
            &[],
            1_000_100,
        )
        .expect("merges");
        let mut all = latency_histogram();
        for latency in [1_000u64; 99].iter().chain(&[100_000; 10]) {
            all.record(*latency).expect("in bounds");
        }
        assert_eq!(merged.run.corrected_percentiles(), Percentiles::of(&all));
        assert_eq!(merged.run.records.len(), 109);
        assert!((merged.run.generator_cpu_s - 1.5).abs() < 1e-9);
        // One clock: the second generator started 250 ms after the first, the lab's epoch
        // 100 ms after the first; the records are in time order.
        assert_eq!(merged.generators[1].started_after_ms, 250);
        assert_eq!(merged.run.records.first().map(|r| r.t_ms), Some(0));
        assert!(merged.run.records.iter().any(|record| record.t_ms == 150));
        assert!(merged.run.records.is_sorted_by_key(|record| record.t_ms));
        // From the first start to the last end.
        assert!(
            (merged.run.wall_s - 2.25).abs() < 1e-9,
            "{}",
            merged.run.wall_s
        );
        assert!((merged.busiest_share - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_shard_cut_short_is_refused_and_lines_before_its_header_are_skipped() {
        let mut out = b"a line the generator printed first\n".to_vec();
        write_shard(
            &mut out,
            "gen",
            Share { index: 1, of: 1 },
            5,
            1.0,
            &run(&[1_000, 2_000, 3_000], 0.1),
        )
        .expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(read_shard(&text).expect("whole").records.len(), 3);
        let cut: String = text
            .lines()
            .take(3)
            .map(|line| format!("{line}\n"))
            .collect();
        let error = read_shard(&cut).expect_err("cut short");
        assert!(format!("{error:#}").contains("cut short"), "{error:#}");
        assert!(read_shard("nothing here\n").is_err());
    }
}

//! Numbers from request records: per-second timelines per journey, and the success rate and
//! latency of a journey inside a window of the lab's clock (before / during / after a fault
//! or a deploy).
//!
//! Latency is of successful requests only, everywhere: a dead shop refuses a connection in
//! a millisecond, and counting that as a fast answer would show a p99 that drops when the
//! shop dies. Failures are counted apart, split into fast errors and time-outs; a window
//! without a success has no latency (`ok == 0`), not a latency of zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{Outcome, RequestRecord};
use crate::latency::{Percentiles, latency_histogram};

/// Requests per journey in consecutive slices of the lab's clock: what the report's
/// timelines draw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// The width of every slice.
    pub slice_ms: u64,
    /// In time order; a journey with no request in a slice has no entry for it.
    pub slices: Vec<Slice>,
}

/// One slice of time of one journey.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slice {
    /// The slice's start on the experiment's clock (the same clock as its event times).
    pub t_ms: u64,
    pub journey: String,
    pub ok: usize,
    pub fail: usize,
    pub maybe_applied: usize,
    /// Of the failed requests (`fail + maybe_applied`), those that got no answer within the
    /// generator's timeout.
    #[serde(default)]
    pub timed_out: usize,
    /// Of the successful requests; 0 when `ok == 0` (no successful request: no latency).
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Requests of a window, counted and timed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WindowStats {
    pub requests: usize,
    pub ok: usize,
    /// Failed requests that were answered or refused before the timeout (a non-2xx answer,
    /// a refused connection).
    #[serde(default)]
    pub fast_errors: usize,
    /// Failed requests that got no answer within the generator's timeout.
    #[serde(default)]
    pub timeouts: usize,
    /// Share of requests answered 2xx; `None` when the window saw no request.
    pub success_rate: Option<f64>,
    /// Of the successful requests only; all zero when `ok == 0` — ask
    /// [`WindowStats::success_latency`], which says so.
    pub latency: Percentiles,
}

impl WindowStats {
    /// The latency of the window's successful requests; `None` when none succeeded.
    pub fn success_latency(&self) -> Option<&Percentiles> {
        (self.ok > 0).then_some(&self.latency)
    }

    /// `p99 12.3 ms`, or `no successful request`.
    pub fn describe_p99(&self) -> String {
        self.success_latency().map_or_else(
            || "no successful request".to_owned(),
            |latency| format!("p99 {}", crate::latency::ms(latency.p99_us)),
        )
    }
}

/// Per slice of `slice_ms` and journey, in time order.
pub fn timeline(records: &[RequestRecord], slice_ms: u64) -> Timeline {
    let mut buckets: BTreeMap<(u64, &str), Vec<&RequestRecord>> = BTreeMap::new();
    for record in records {
        buckets
            .entry((record.t_ms / slice_ms * slice_ms, record.journey.as_str()))
            .or_default()
            .push(record);
    }
    let slices = buckets
        .into_iter()
        .map(|((t_ms, journey), records)| {
            let stats = stats(records.iter().copied());
            Slice {
                t_ms,
                journey: journey.to_owned(),
                ok: count(&records, Outcome::Ok),
                fail: count(&records, Outcome::Fail),
                maybe_applied: count(&records, Outcome::MaybeApplied),
                timed_out: records.iter().filter(|record| record.timed_out).count(),
                p50_us: stats.latency.p50_us,
                p99_us: stats.latency.p99_us,
            }
        })
        .collect();
    Timeline { slice_ms, slices }
}

fn count(records: &[&RequestRecord], outcome: Outcome) -> usize {
    records
        .iter()
        .filter(|record| record.outcome == outcome)
        .count()
}

/// The records sent in `[from_ms, to_ms)` that `keep` selects.
pub fn window<'a>(
    records: &'a [RequestRecord],
    from_ms: u64,
    to_ms: u64,
    keep: impl Fn(&RequestRecord) -> bool + 'a,
) -> impl Iterator<Item = &'a RequestRecord> + 'a {
    records
        .iter()
        .filter(move |record| record.t_ms >= from_ms && record.t_ms < to_ms && keep(record))
}

/// Counts, and latency percentiles (raw) of the successful ones, of some records.
pub fn stats<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> WindowStats {
    let mut histogram = latency_histogram();
    let mut window = WindowStats::default();
    for record in records {
        window.requests += 1;
        if record.outcome == Outcome::Ok {
            window.ok += 1;
            let _ = histogram.record(record.latency_us.clamp(1, 300_000_000));
        } else if record.timed_out {
            window.timeouts += 1;
        } else {
            window.fast_errors += 1;
        }
    }
    window.success_rate = (window.requests > 0).then(|| window.ok as f64 / window.requests as f64);
    window.latency = Percentiles::of(&histogram);
    window
}

/// The latency histogram of the successful requests among `records`.
pub fn success_histogram<'a>(
    records: impl IntoIterator<Item = &'a RequestRecord>,
) -> hdrhistogram::Histogram<u64> {
    let mut histogram = latency_histogram();
    for record in records {
        if record.outcome == Outcome::Ok {
            let _ = histogram.record(record.latency_us.clamp(1, 300_000_000));
        }
    }
    histogram
}

/// The journeys and route templates seen in `records`.
pub fn names(records: &[RequestRecord], of: impl Fn(&RequestRecord) -> &str) -> Vec<String> {
    let mut names: Vec<String> = records.iter().map(|record| of(record).to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

/// Whether a step did worse during a fault than before it: fewer successes (by more than
/// two points), or a p99 over twice the one before plus 50 ms.
pub fn degraded(before: &WindowStats, during: &WindowStats) -> bool {
    let (Some(before_rate), Some(during_rate)) = (before.success_rate, during.success_rate) else {
        // No request got through at all during the window: that is degraded.
        return before.requests > 0 && during.requests == 0;
    };
    during_rate < before_rate - 0.02 || during.latency.p99_us > before.latency.p99_us * 2 + 50_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t_ms: u64, journey: &str, status: u16, latency_us: u64) -> RequestRecord {
        RequestRecord {
            t_ms,
            journey: journey.into(),
            transaction: "GET /api/products".into(),
            status,
            latency_us,
            outcome: Outcome::classify(false, status),
            timed_out: false,
            idempotency_key: None,
            order_id: None,
            total_cents: None,
            user: None,
        }
    }

    #[test]
    fn a_timeline_has_one_row_per_slice_and_journey_with_its_outcomes() {
        let records = vec![
            record(10, "browse", 200, 1_000),
            record(900, "browse", 503, 3_000),
            record(950, "buy", 200, 2_000),
            record(1_500, "browse", 200, 1_000),
        ];
        let rows = |slice_ms| {
            timeline(&records, slice_ms)
                .slices
                .iter()
                .map(|row| (row.t_ms, row.journey.clone(), row.ok, row.fail))
                .collect::<Vec<_>>()
        };
        let row = |t_ms, journey: &str, ok, fail| (t_ms, journey.to_owned(), ok, fail);
        assert_eq!(
            rows(1000),
            vec![
                row(0, "browse", 1, 1),
                row(0, "buy", 1, 0),
                row(1000, "browse", 1, 0)
            ]
        );
        assert_eq!(
            rows(500),
            vec![
                row(0, "browse", 1, 0),
                row(500, "browse", 0, 1),
                row(500, "buy", 1, 0),
                row(1500, "browse", 1, 0)
            ]
        );
    }

    #[test]
    fn latency_is_of_successes_and_failures_are_split_into_fast_errors_and_timeouts() {
        let mut timeout = record(3, "browse", 0, 2_000_000);
        timeout.timed_out = true;
        let records = vec![
            record(0, "browse", 200, 40_000),
            record(1, "browse", 503, 900),
            record(2, "browse", 0, 300),
            timeout,
        ];
        let window = stats(&records);
        assert_eq!((window.requests, window.ok), (4, 1));
        assert_eq!((window.fast_errors, window.timeouts), (2, 1));
        // Neither the 0.3 ms refusal nor the 2 s timeout is in the successes' latency.
        let latency = window.success_latency().expect("one success");
        assert!((39_900..=40_100).contains(&latency.p50_us), "{latency:?}");
        assert_eq!(latency.p99_us, latency.max_us);
        let slices = timeline(&records, 1000).slices;
        assert_eq!(slices.len(), 1);
        assert_eq!((slices[0].ok, slices[0].timed_out), (1, 1));
        assert!((39_900..=40_100).contains(&slices[0].p99_us));
    }

    #[test]
    fn a_window_without_a_success_has_no_latency() {
        // A dead shop refuses fast: its failures must not read as a 1 ms p99.
        let dead = stats(&[record(0, "browse", 0, 800), record(1, "browse", 503, 1_000)]);
        assert_eq!(dead.success_latency(), None);
        assert_eq!(dead.describe_p99(), "no successful request");
        assert_eq!(dead.latency.p99_us, 0);
        let slices = timeline(&[record(0, "browse", 0, 800)], 1000).slices;
        assert_eq!((slices[0].ok, slices[0].p99_us), (0, 0));
    }

    #[test]
    fn a_window_that_lost_successes_or_tail_latency_is_degraded() {
        let before = stats(&[
            record(0, "browse", 200, 1_000),
            record(1, "browse", 200, 1_000),
        ]);
        let same = stats(&[record(2, "browse", 200, 1_100)]);
        let failing = stats(&[
            record(2, "browse", 200, 1_000),
            record(3, "browse", 503, 1_000),
        ]);
        let slow = stats(&[record(2, "browse", 200, 400_000)]);
        assert!(!degraded(&before, &same));
        assert!(degraded(&before, &failing));
        assert!(degraded(&before, &slow));
        assert!(degraded(&before, &WindowStats::default()));
    }
}

//! Numbers from request records: per-second timelines per journey, and the success rate and
//! latency of a journey inside a window of the lab's clock (before / during / after a fault
//! or a deploy).

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
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Requests of a window, counted and timed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WindowStats {
    pub requests: usize,
    pub ok: usize,
    /// Share of requests answered 2xx; `None` when the window saw no request.
    pub success_rate: Option<f64>,
    pub latency: Percentiles,
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

/// Counts and latency percentiles (raw) of some records.
pub fn stats<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> WindowStats {
    let mut histogram = latency_histogram();
    let mut requests = 0;
    let mut ok = 0;
    for record in records {
        requests += 1;
        if record.outcome == Outcome::Ok {
            ok += 1;
        }
        let _ = histogram.record(record.latency_us.clamp(1, 300_000_000));
    }
    WindowStats {
        requests,
        ok,
        success_rate: (requests > 0).then(|| ok as f64 / requests as f64),
        latency: Percentiles::of(&histogram),
    }
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

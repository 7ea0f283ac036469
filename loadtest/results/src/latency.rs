//! Latency percentiles, read from HDR histograms of microseconds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50_us: histogram.value_at_quantile(0.50),
            p95_us: histogram.value_at_quantile(0.95),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        }
    }
}

/// Microseconds as milliseconds with the digits they deserve: `0.88 ms`, `12.3 ms`, `140 ms`.
pub fn ms(us: u64) -> String {
    let value = us as f64 / 1000.0;
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.2} ms")
    }
}

/// One point of a latency distribution: `quantile` of the requests took at most `us`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantile {
    pub quantile: f64,
    pub us: u64,
}

/// The quantiles a "nines" plot draws: the body, then one more nine at a time.
const NINES: [f64; 12] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
];

/// The distribution of `histogram` at [`NINES`] and its maximum, for a log-scale "nines"
/// plot. A quantile the sample cannot resolve (fewer than one request above it) is left out:
/// with 500 requests the "p99.99" would only be the maximum again.
pub fn nines(histogram: &Histogram<u64>) -> Vec<Quantile> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let count = histogram.len() as f64;
    let mut points: Vec<Quantile> = NINES
        .iter()
        .filter(|quantile| count * (1.0 - **quantile) >= 1.0)
        .map(|quantile| Quantile {
            quantile: *quantile,
            us: histogram.value_at_quantile(*quantile),
        })
        .collect();
    points.push(Quantile {
        quantile: 1.0,
        us: histogram.max(),
    });
    points
}

/// A histogram of microseconds from 1 us to 5 min at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nines_stop_where_the_sample_stops_resolving_them_and_end_at_the_maximum() {
        let mut histogram = latency_histogram();
        for us in 1..=1_000u64 {
            histogram.record(us * 10).expect("in range");
        }
        let points = nines(&histogram);
        let quantiles: Vec<f64> = points.iter().map(|point| point.quantile).collect();
        // 1 000 requests resolve p99.9 (one request above it) but not p99.95.
        assert_eq!(
            quantiles,
            vec![0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0]
        );
        let p99 = points
            .iter()
            .find(|point| point.quantile == 0.99)
            .expect("p99");
        assert!((9_890..=9_910).contains(&p99.us), "{p99:?}");
        assert_eq!(points.last().map(|point| point.us), Some(histogram.max()));
        assert!(nines(&latency_histogram()).is_empty());
    }
}

//! How sure a figure measured over repeats is: an [`Estimate`] with a 95 % confidence interval
//! for one set of repeats, a [`ratio`] of two sets with its interval, and whether two builds
//! are [`distinguishable`] from the noise at the number of repeats run.
//!
//! **Which interval, and why.** The lab runs few repeats (1 on the quick profile, 2-5 on the
//! others). An order-statistic interval for the median cannot reach 95 % below six samples
//! (the chance that the median lies between the smallest and the largest of `n` samples is
//! `1 - 2 / 2^n`: 50 % at two, 94 % at five), and a bootstrap resamples a handful of values
//! into an interval that is far too narrow. The Student t interval of the mean is exact for
//! repeats that scatter normally and honest about small samples: at two repeats its factor is
//! 12.7 standard errors, so two close runs still give a wide interval, as they should. So the
//! interval here is Student t around the mean; the point figure a report states is still the
//! median, which [`Estimate::median`] holds beside the mean the interval is built around.
//!
//! **Ratios.** Throughput and latency are positive and their spread grows with their size, so
//! a ratio is estimated on log values: the difference of the mean logs, with Welch's
//! t interval (unequal variances, Welch-Satterthwaite degrees of freedom — the test ECSA 2025
//! uses for the same question), taken back with `exp`. Two builds are distinguishable when
//! that interval of micro ÷ monolith leaves out 1.
//!
//! **One run.** With `n == 1` there is no spread to measure: the estimate has no interval
//! ([`Estimate::interval`] is `None`, `low == high == median`), and nothing is distinguishable.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The confidence level of every interval here.
pub const CONFIDENCE: f64 = 0.95;

/// Repeats further apart than this — (max - min) over the median — disagree: the report flags
/// the figure as noisy. A tenth is about the spread of a quiet machine's repeats of one level.
pub const DISAGREE: f64 = 0.10;

/// A figure over its repeats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point figure the report states: the median of the repeats (of a ratio: the ratio of
    /// the two medians).
    pub median: f64,
    /// What the interval is built around: the mean of the repeats (of a ratio: the ratio of
    /// the geometric means).
    pub centre: f64,
    /// The interval's ends; both equal `median` when there is no interval.
    pub low: f64,
    pub high: f64,
    /// Repeats behind the figure (of a ratio: the smaller side's).
    pub n: usize,
    /// The smallest and largest repeat (of a ratio: both equal `median`).
    pub min: f64,
    pub max: f64,
    pub method: Method,
}

/// How an [`Estimate`]'s interval was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// One run (or a ratio with one run on a side, or of a value that is not positive): no
    /// interval.
    OneRun,
    /// The 95 % Student t interval of the mean.
    StudentT,
    /// The 95 % Welch t interval of the difference of mean logs, taken back with `exp`.
    WelchLog,
}

impl Method {
    /// `95 % CI: Student t of the mean`, for a caption; `one run: no spread` without one.
    pub fn describe(self) -> &'static str {
        match self {
            Method::OneRun => "one run: no spread",
            Method::StudentT => "95 % CI: Student t of the mean of the repeats",
            Method::WelchLog => "95 % CI: Welch's t on log values",
        }
    }
}

impl Estimate {
    /// The estimate of repeated measurements; `None` without a finite value. Non-finite values
    /// are left out.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Estimate> {
        let mut values: Vec<f64> = values
            .into_iter()
            .filter(|value| value.is_finite())
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = median_of_sorted(&values);
        let (centre, variance) = mean_and_variance(&values);
        let mut estimate = Estimate {
            median,
            centre,
            low: median,
            high: median,
            n,
            min: values[0],
            max: values[n - 1],
            method: Method::OneRun,
        };
        if n >= 2 {
            let half_width = t_quantile((n - 1) as f64) * (variance / n as f64).sqrt();
            // A figure whose repeats are all non-negative (a rate, a latency) cannot be
            // negative: the symmetric t interval is cut at zero rather than printed as -45 ms.
            let floor = if estimate.min >= 0.0 { 0.0 } else { f64::MIN };
            estimate.low = (centre - half_width).max(floor);
            estimate.high = centre + half_width;
            estimate.method = Method::StudentT;
        }
        Some(estimate)
    }

    /// The 95 % interval, `None` with a single run.
    pub fn interval(&self) -> Option<(f64, f64)> {
        (self.method != Method::OneRun).then_some((self.low, self.high))
    }

    /// Whether the interval leaves `value` out; never with a single run.
    pub fn excludes(&self, value: f64) -> bool {
        self.interval()
            .is_some_and(|(low, high)| value < low || value > high)
    }

    /// (max - min) over the median: how far the repeats are apart (0 for one run).
    pub fn relative_range(&self) -> f64 {
        if self.median.abs() < f64::EPSILON {
            0.0
        } else {
            (self.max - self.min) / self.median.abs()
        }
    }

    /// Whether the repeats disagree by more than [`DISAGREE`]; never with one run.
    pub fn disagrees(&self) -> bool {
        self.n >= 2 && self.relative_range() > DISAGREE
    }

    /// `1 234 [1 200–1 270]` with `places` decimals, `1 234 (one run)` without an interval.
    pub fn describe(&self, places: usize) -> String {
        match self.interval() {
            Some((low, high)) => format!(
                "{:.places$} [95 % CI {low:.places$}–{high:.places$}, n={}]",
                self.median, self.n
            ),
            None => format!("{:.places$} (one run)", self.median),
        }
    }
}

/// `a ÷ b` with Welch's interval on log values. Without an interval (`Method::OneRun`) when a
/// side has a single run or a value that is not positive (a log needs one); `None` when a side
/// has no finite value or a median of zero.
pub fn ratio(a: &[f64], b: &[f64]) -> Option<Ratio> {
    let a_estimate = Estimate::of(a.iter().copied())?;
    let b_estimate = Estimate::of(b.iter().copied())?;
    if b_estimate.median == 0.0 {
        return None;
    }
    let median = a_estimate.median / b_estimate.median;
    let mut estimate = Estimate {
        median,
        centre: median,
        low: median,
        high: median,
        n: a_estimate.n.min(b_estimate.n),
        min: median,
        max: median,
        method: Method::OneRun,
    };
    let logs = |values: &[f64]| -> Option<Vec<f64>> {
        values
            .iter()
            .filter(|value| value.is_finite())
            .map(|value| (*value > 0.0).then(|| value.ln()))
            .collect()
    };
    if let (Some(a_logs), Some(b_logs)) = (logs(a), logs(b))
        && a_logs.len() >= 2
        && b_logs.len() >= 2
    {
        let (a_mean, a_variance) = mean_and_variance(&a_logs);
        let (b_mean, b_variance) = mean_and_variance(&b_logs);
        let (a_n, b_n) = (a_logs.len() as f64, b_logs.len() as f64);
        let (a_part, b_part) = (a_variance / a_n, b_variance / b_n);
        let standard_error = (a_part + b_part).sqrt();
        let difference = a_mean - b_mean;
        // Welch-Satterthwaite; with no variance on either side the interval is the point.
        let half_width = if standard_error > 0.0 {
            let freedom = (a_part + b_part).powi(2)
                / (a_part.powi(2) / (a_n - 1.0) + b_part.powi(2) / (b_n - 1.0));
            t_quantile(freedom) * standard_error
        } else {
            0.0
        };
        estimate.centre = difference.exp();
        estimate.low = (difference - half_width).exp();
        estimate.high = (difference + half_width).exp();
        estimate.method = Method::WelchLog;
    }
    Some(Ratio {
        estimate,
        a: a_estimate,
        b: b_estimate,
    })
}

/// A ratio `a ÷ b` and the two estimates it was made of.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub estimate: Estimate,
    pub a: Estimate,
    pub b: Estimate,
}

impl Ratio {
    /// Whether the interval of the ratio leaves out 1: the difference is larger than the noise
    /// at these repeats. Never with a single run on a side.
    pub fn distinguishable(&self) -> bool {
        self.estimate.excludes(1.0)
    }

    /// `×1.32 [95 % CI ×1.20–×1.45]`, `×1.32 (one run: no interval)`.
    pub fn describe(&self) -> String {
        match self.estimate.interval() {
            Some((low, high)) => format!(
                "×{:.2} [95 % CI ×{low:.2}–×{high:.2}]",
                self.estimate.median
            ),
            None => format!("×{:.2} (one run: no interval)", self.estimate.median),
        }
    }

    /// Whether and how the difference stands out of the noise, as a clause for a verdict.
    pub fn verdict(&self) -> String {
        let n = self.estimate.n;
        if self.estimate.method == Method::OneRun {
            "one run: no spread, so whether the difference exceeds the noise is unknown".to_owned()
        } else if self.distinguishable() {
            format!("distinguishable from the noise at {n} repeats (the interval leaves out ×1)")
        } else {
            format!("not distinguishable from the noise at {n} repeats (the interval holds ×1)")
        }
    }
}

/// Whether `a` and `b` differ by more than the noise at their repeats: the 95 % interval of
/// `a ÷ b` (Welch on logs) leaves out 1.
pub fn distinguishable(a: &[f64], b: &[f64]) -> bool {
    ratio(a, b).is_some_and(|ratio| ratio.distinguishable())
}

/// The two-sided 95 % quantile of Student's t with `freedom` degrees of freedom.
fn t_quantile(freedom: f64) -> f64 {
    StudentsT::new(0.0, 1.0, freedom)
        .map(|distribution| distribution.inverse_cdf(0.5 + CONFIDENCE / 2.0))
        // Freedom is at least 1 wherever this is called; a normal quantile is the safe limit.
        .unwrap_or(1.959_963_984_540_054)
}

/// The mean and the sample variance (divided by n - 1; 0 for one value).
fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (mean, squares / (n - 1.0))
}

fn median_of_sorted(values: &[f64]) -> f64 {
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn t_quantiles_match_the_printed_table() {
        // Two-sided 95 %: 12.706 (1), 4.303 (2), 2.776 (4), 2.228 (10), 2.042 (30).
        for (freedom, expected) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (10.0, 2.228),
            (30.0, 2.042),
        ] {
            let actual = t_quantile(freedom);
            assert!(close(actual, expected, 0.001), "df {freedom}: {actual}");
        }
    }

    #[test]
    fn an_estimate_of_repeats_has_the_student_t_interval_of_their_mean() {
        // Mean 100, sample sd 10 (90, 100, 110), n 3: 100 ± 4.303 × 10 / √3 = 100 ± 24.84.
        let estimate = Estimate::of([110.0, 90.0, 100.0]).expect("values");
        assert_eq!(estimate.method, Method::StudentT);
        assert_eq!((estimate.median, estimate.n), (100.0, 3));
        assert!(close(estimate.low, 75.16, 0.01), "{estimate:?}");
        assert!(close(estimate.high, 124.84, 0.01), "{estimate:?}");
        assert!(estimate.excludes(70.0) && !estimate.excludes(80.0));
        assert!(estimate.disagrees(), "a 20 % range is past 10 %");
    }

    #[test]
    fn an_interval_of_non_negative_repeats_stops_at_zero() {
        // Mean 50, sd 28.28, se 20, t(1) 12.706: 50 ± 254, cut at 0 below.
        let estimate = Estimate::of([30.0, 70.0]).expect("values");
        assert_eq!(estimate.low, 0.0);
        assert!(
            close(estimate.high, 50.0 + 12.706 * 20.0, 0.01),
            "{estimate:?}"
        );
        let signed = Estimate::of([-30.0, 70.0]).expect("values");
        assert!(signed.low < 0.0);
    }

    #[test]
    fn two_repeats_give_a_wide_interval_of_twelve_standard_errors() {
        // Mean 100, sd √2 · 1 = 1.414, se 1: 100 ± 12.706.
        let estimate = Estimate::of([99.0, 101.0]).expect("values");
        assert!(close(estimate.high - estimate.centre, 12.706, 0.001));
        assert!(!estimate.disagrees(), "a 2 % range is within 10 %");
    }

    #[test]
    fn one_run_has_no_interval_excludes_nothing_and_never_disagrees() {
        let estimate = Estimate::of([42.0, f64::NAN]).expect("one finite value");
        assert_eq!(estimate.method, Method::OneRun);
        assert_eq!(estimate.interval(), None);
        assert_eq!((estimate.low, estimate.high), (42.0, 42.0));
        assert!(!estimate.excludes(0.0));
        assert!(!estimate.disagrees());
        assert_eq!(estimate.describe(0), "42 (one run)");
        assert!(Estimate::of([]).is_none());
    }

    #[test]
    fn a_ratio_has_welchs_interval_on_log_values() {
        // ln a = ln 200 + (-0.1, 0, 0.1), ln b = ln 100 + (-0.05, 0.05): by hand, difference
        // ln 2 + 0, variances 0.01 and 0.005, parts 0.01/3 and 0.005/2, se = √0.0058333 =
        // 0.076376; df = 0.0058333² / ((0.0033333²)/2 + (0.0025²)/1) = 3.4028e-5 /
        // (5.5556e-6 + 6.25e-6) = 2.8824; t(0.975, 2.8824) = 3.2572 (the t density integrated
        // numerically), half width 0.24877, so ×2 · e^±0.24877 = ×1.5595 – ×2.5649.
        let a: Vec<f64> = [-0.1, 0.0, 0.1]
            .iter()
            .map(|offset: &f64| 200.0 * offset.exp())
            .collect();
        let b: Vec<f64> = [-0.05, 0.05]
            .iter()
            .map(|offset: &f64| 100.0 * offset.exp())
            .collect();
        let ratio = ratio(&a, &b).expect("both sides");
        assert_eq!(ratio.estimate.method, Method::WelchLog);
        assert_eq!(ratio.estimate.n, 2);
        assert!(close(ratio.estimate.centre, 2.0, 1e-9), "{ratio:?}");
        assert!(close(ratio.estimate.low, 1.5595, 0.001), "{ratio:?}");
        assert!(close(ratio.estimate.high, 2.5649, 0.001), "{ratio:?}");
        assert!(ratio.distinguishable());
        assert!(distinguishable(&a, &b));
    }

    #[test]
    fn overlapping_builds_are_not_distinguishable() {
        let a = [100.0, 120.0, 90.0];
        let b = [105.0, 95.0, 115.0];
        let ratio = ratio(&a, &b).expect("both sides");
        assert!(
            ratio.estimate.low < 1.0 && ratio.estimate.high > 1.0,
            "{ratio:?}"
        );
        assert!(!ratio.distinguishable());
        assert!(ratio.verdict().starts_with("not distinguishable"));
    }

    #[test]
    fn a_ratio_with_one_run_on_a_side_states_the_ratio_of_medians_without_an_interval() {
        let ratio = ratio(&[300.0], &[100.0, 110.0]).expect("both sides");
        assert_eq!(ratio.estimate.method, Method::OneRun);
        assert!(close(ratio.estimate.median, 300.0 / 105.0, 1e-9));
        assert!(!ratio.distinguishable(), "one run cannot tell noise apart");
        assert_eq!(ratio.describe(), "×2.86 (one run: no interval)");
        assert!(ratio.verdict().starts_with("one run: no spread"));
    }

    #[test]
    fn a_ratio_of_values_that_are_not_positive_has_no_interval_and_of_a_zero_median_none() {
        let with_zero = ratio(&[0.0, 2.0], &[1.0, 2.0]).expect("both sides");
        assert_eq!(with_zero.estimate.method, Method::OneRun);
        assert!(ratio(&[1.0, 2.0], &[0.0, 0.0]).is_none());
    }
}

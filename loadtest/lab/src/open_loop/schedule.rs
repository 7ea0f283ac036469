//! When each arrival is due: a rate that is constant or ramps linearly from one rate to
//! another over the window, with arrivals Poisson or evenly spaced.
//!
//! Both spacings are one construction: with `Λ(t)` the expected arrivals by `t` (the
//! integral of the rate), arrival `k` is due at `Λ⁻¹(s_k)`, where `s_k = k` for evenly
//! spaced arrivals and `s_k` is a unit-rate Poisson process (a sum of exponential gaps) for
//! Poisson ones — the time-change that turns a unit-rate process into one of any rate.

use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};

use loadtest_results::experiments::capacity::Arrivals;

/// Offered load: `from_per_s` at the start, `to_per_s` at the end, linear between.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub from_per_s: f64,
    pub to_per_s: f64,
}

impl Rate {
    pub fn constant(per_s: f64) -> Rate {
        Rate {
            from_per_s: per_s,
            to_per_s: per_s,
        }
    }

    /// Arrivals expected over a window of `duration`: the mean rate times the window.
    pub fn expected(&self, duration: Duration) -> f64 {
        (self.from_per_s + self.to_per_s) / 2.0 * duration.as_secs_f64()
    }
}

/// Every arrival's due time from the window's start, in order.
pub fn due_times(rate: Rate, duration: Duration, arrivals: Arrivals, seed: u64) -> Vec<Duration> {
    let window = duration.as_secs_f64();
    let total = rate.expected(duration);
    if window <= 0.0 || total <= 0.0 {
        return Vec::new();
    }
    let a = rate.from_per_s;
    let b = (rate.to_per_s - rate.from_per_s) / window;
    // Λ⁻¹(s): the root of a·t + b·t²/2 = s in [0, window].
    let inverse = |s: f64| {
        if b.abs() < 1e-12 {
            s / a
        } else {
            (-a + (a * a + 2.0 * b * s).max(0.0).sqrt()) / b
        }
    };
    let mut times = Vec::with_capacity(total.ceil() as usize + 16);
    let mut random = rand::rngs::StdRng::seed_from_u64(seed);
    let mut s = 0.0;
    loop {
        if arrivals == Arrivals::Poisson {
            // An exponential gap of mean 1: -ln(U) with U in (0, 1].
            s += -(1.0 - random.random::<f64>()).ln();
        }
        if s >= total {
            break;
        }
        let at = inverse(s);
        if !(0.0..window).contains(&at) {
            break;
        }
        times.push(Duration::from_secs_f64(at));
        if arrivals == Arrivals::Uniform {
            s += 1.0;
        }
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    #[test]
    fn evenly_spaced_arrivals_at_a_constant_rate_are_exactly_rate_times_window_apart() {
        let times = due_times(Rate::constant(50.0), WINDOW, Arrivals::Uniform, 1);
        assert_eq!(times.len(), 500);
        assert_eq!(times[0], Duration::ZERO);
        let gap = times[1] - times[0];
        assert!((gap.as_secs_f64() - 0.02).abs() < 1e-9, "gap {gap:?}");
    }

    #[test]
    fn a_ramp_offers_its_mean_rate_and_puts_more_arrivals_in_its_second_half() {
        let rate = Rate {
            from_per_s: 10.0,
            to_per_s: 90.0,
        };
        let times = due_times(rate, WINDOW, Arrivals::Uniform, 1);
        assert_eq!(times.len(), 500);
        let first_half = times.iter().filter(|t| t.as_secs_f64() < 5.0).count();
        // Λ(5 s) = 10·5 + 8·25/2 = 150 of the 500.
        assert!((149..=151).contains(&first_half), "{first_half}");
    }

    #[test]
    fn poisson_arrivals_count_close_to_the_mean_and_differ_by_seed() {
        let rate = Rate::constant(200.0);
        let one = due_times(rate, WINDOW, Arrivals::Poisson, 1);
        let other = due_times(rate, WINDOW, Arrivals::Poisson, 2);
        // 2000 expected, standard deviation about 45: five of them either side.
        for times in [&one, &other] {
            assert!((1775..=2225).contains(&times.len()), "{}", times.len());
            assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
        }
        assert_ne!(one, other);
        assert_eq!(one, due_times(rate, WINDOW, Arrivals::Poisson, 1));
    }
}

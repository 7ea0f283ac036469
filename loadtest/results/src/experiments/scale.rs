//! The scale experiment's findings: the same load before and after one more replica of
//! the bottleneck, each process held to a CPU quota, and what the added process bought per
//! core and per MiB it costs.

use serde::{Deserialize, Serialize};

use crate::latency::Percentiles;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scale {
    /// The component that got a second replica.
    pub component: String,
    pub users: usize,
    pub before: Half,
    pub after: Half,
    /// after / before, requests per second.
    pub speedup: f64,
    /// Cores the system under test may use (replicas share them).
    pub sut_cores: usize,
    /// CPU seconds per process during the first half (how the hottest was chosen).
    pub cpu_by_process: Vec<(String, f64)>,
    /// How the second half's requests to the scaled component were spread over its
    /// replicas. None where nothing counts them (no front door on the platform), or in
    /// results written before it was recorded.
    #[serde(default)]
    pub spread: Option<ReplicaSpread>,
    /// The CPU quota every process was held to in both halves, or why none was. Results
    /// from before quotas read as none asked.
    #[serde(default)]
    pub quota: Quota,
    /// Each process of the first half against its quota, busiest first: how the bottleneck
    /// was found. Empty without a quota (then `cpu_by_process` chose).
    #[serde(default)]
    pub utilisation: Vec<Utilisation>,
    /// The process the second half added: what it was given and what it held.
    #[serde(default)]
    pub added: Option<Added>,
    /// What the added process bought. None in results from before it was recorded.
    #[serde(default)]
    pub gain: Option<Gain>,
}

/// The per-process CPU quota of the experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    /// Cores of CPU time each process could use (0.1 = a tenth of one core); `None` where
    /// none held them.
    pub cores: Option<f64>,
    /// What was in force, in the cgroup files' words.
    pub note: Option<String>,
    /// Why no quota held them: "not applicable: …" (the platform has no such thing) or
    /// "unavailable: …" (this machine cannot); `None` where one did or none was asked.
    pub unavailable: Option<String>,
}

/// One component's CPU in the first half against what its quota allowed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Utilisation {
    pub process: String,
    pub replicas: usize,
    pub cpu_s: f64,
    /// `cpu_s / (quota × replicas × wall)`: 1.0 is a process that used all of its quota,
    /// the most the kernel lets it.
    pub utilisation: f64,
}

/// The process the second half added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Added {
    /// `catalog#2`, `monolith#2`.
    pub process: String,
    /// The CPU quota in force on it, read back from its cgroup (cores); `None` where it
    /// had none (the added CPU is then unbounded and no gain per core is given).
    pub cpu_cores: Option<f64>,
    /// Its resident memory at the end of the second half (MiB); `None` where the platform
    /// shows no PID to read it by.
    pub rss_mib: Option<f64>,
}

/// The capacity the added process bought: successful requests per second after minus
/// before, and that per core of quota and per MiB of memory it added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gain {
    pub requests_per_s: f64,
    pub per_cpu: Option<f64>,
    pub per_mib: Option<f64>,
}

impl Gain {
    /// From the two halves and the added process. Gains are of successful requests (what
    /// the shop delivered), and may be negative: a replica that adds contention.
    pub fn of(before: &Half, after: &Half, added: &Added) -> Gain {
        let requests_per_s = after.successful_per_s() - before.successful_per_s();
        let per = |cost: Option<f64>| {
            cost.filter(|cost| *cost > 0.0)
                .map(|cost| requests_per_s / cost)
        };
        Gain {
            requests_per_s,
            per_cpu: per(added.cpu_cores),
            per_mib: per(added.rss_mib),
        }
    }
}

impl Scale {
    /// The busiest process against its quota, where there was one.
    pub fn bottleneck(&self) -> Option<&Utilisation> {
        self.utilisation
            .iter()
            .max_by(|a, b| a.utilisation.total_cmp(&b.utilisation))
    }
}

/// Requests per replica in a window, as the balancer in front of them counted them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaSpread {
    /// Who counted, and what (responses, or calls with their retries).
    pub counted_by: String,
    /// Each replica, by the address the balancer sent to, with its count in the window.
    pub replicas: Vec<(String, u64)>,
}

impl ReplicaSpread {
    /// The busiest replica's share over an even share: 1.0 is a perfect spread, 2.0 with
    /// two replicas is everything on one. None when nothing was counted.
    pub fn imbalance(&self) -> Option<f64> {
        let total: u64 = self.replicas.iter().map(|(_, count)| count).sum();
        let most = self.replicas.iter().map(|(_, count)| *count).max()?;
        (total > 0).then(|| most as f64 * self.replicas.len() as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(counts: &[u64]) -> ReplicaSpread {
        ReplicaSpread {
            counted_by: "test".to_owned(),
            replicas: counts
                .iter()
                .enumerate()
                .map(|(i, count)| (format!("r{i}"), *count))
                .collect(),
        }
    }

    fn half(requests_per_s: f64, error_rate: f64) -> Half {
        Half {
            warm_up_s: 0.0,
            replicas: 1,
            requests_per_s,
            error_rate,
            latency: Percentiles::default(),
            sut_cpu_s: None,
            requests_per_sut_cpu_s: None,
        }
    }

    #[test]
    fn the_gain_is_successful_requests_per_core_and_per_mib_added() {
        let added = Added {
            process: "catalog#2".to_owned(),
            cpu_cores: Some(0.1),
            rss_mib: Some(20.0),
        };
        // 200 ok/s before; 400 req/s with 10 % failed after: 360 ok/s, +160.
        let gain = Gain::of(&half(200.0, 0.0), &half(400.0, 0.1), &added);
        assert!((gain.requests_per_s - 160.0).abs() < 1e-9, "{gain:?}");
        assert!((gain.per_cpu.unwrap() - 1600.0).abs() < 1e-9, "{gain:?}");
        assert!((gain.per_mib.unwrap() - 8.0).abs() < 1e-9, "{gain:?}");
        // A replica that only adds contention is a loss, said as one.
        let loss = Gain::of(&half(300.0, 0.0), &half(270.0, 0.0), &added);
        assert!((loss.per_cpu.unwrap() + 300.0).abs() < 1e-9, "{loss:?}");
        // Without a quota or a PID to read there is nothing to divide by.
        let unbounded = Added {
            cpu_cores: None,
            rss_mib: None,
            ..added
        };
        let gain = Gain::of(&half(200.0, 0.0), &half(300.0, 0.0), &unbounded);
        assert_eq!((gain.per_cpu, gain.per_mib), (None, None));
        assert!((gain.requests_per_s - 100.0).abs() < 1e-9);
    }

    #[test]
    fn imbalance_is_the_busiest_share_over_an_even_one() {
        assert_eq!(spread(&[50, 50]).imbalance(), Some(1.0));
        assert_eq!(spread(&[100, 0]).imbalance(), Some(2.0));
        assert_eq!(spread(&[60, 20, 20]).imbalance(), Some(1.8));
        assert_eq!(spread(&[0, 0]).imbalance(), None);
        assert_eq!(spread(&[]).imbalance(), None);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Half {
    pub replicas: usize,
    /// The start of the half left out of every figure below: until the last buy user's
    /// login answered (Argon2, tens of ms of CPU each, all at the start of a run; seconds
    /// of a 0.1-core quota), so the half measures the steady mix, not its login storm.
    /// The measured window is the profile's `scale_duration` after it. 0 in results
    /// written before it was left out.
    #[serde(default)]
    pub warm_up_s: f64,
    pub requests_per_s: f64,
    pub error_rate: f64,
    pub latency: Percentiles,
    /// `None` where the target has nothing to read CPU by (as a throughput level's).
    pub sut_cpu_s: Option<f64>,
    pub requests_per_sut_cpu_s: Option<f64>,
}

impl Half {
    /// Requests per second that succeeded.
    pub fn successful_per_s(&self) -> f64 {
        self.requests_per_s * (1.0 - self.error_rate)
    }
}

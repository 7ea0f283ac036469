//! The scale experiment's findings: the same load before and after one more replica.

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
    pub requests_per_s: f64,
    pub error_rate: f64,
    pub latency: Percentiles,
    /// `None` where the target has nothing to read CPU by (as a throughput level's).
    pub sut_cpu_s: Option<f64>,
    pub requests_per_sut_cpu_s: Option<f64>,
}

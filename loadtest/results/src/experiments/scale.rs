//! The scale experiment's findings: the same load before and after one more replica of
//! the bottleneck (of each bottleneck, where processes tie for it), each process held to a
//! CPU quota, and what the added processes bought per core and per MiB they cost.

use serde::{Deserialize, Deserializer, Serialize};

use crate::latency::Percentiles;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scale {
    /// The bottleneck: the component that got a second replica, the busiest where several
    /// tied (all of them are in `added`).
    pub component: String,
    pub users: usize,
    pub before: Half,
    pub after: Half,
    /// after / before, successful requests per second (all requests, failed ones too, in
    /// results written before 2026-12-07).
    pub speedup: f64,
    /// Cores the system under test may use (replicas share them).
    pub sut_cores: usize,
    /// CPU seconds per process during the first half (how the hottest was chosen).
    pub cpu_by_process: Vec<(String, f64)>,
    /// How the second half's requests to the scaled component (`component`, where several
    /// were scaled) were spread over its replicas. None where nothing counts them (no front door on the platform), or in
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
    /// The processes the second half added, one replica of each tied bottleneck
    /// (microservices; see [`TIE_MARGIN`]) or one more monolith: what each was given and
    /// what it held. Results from before ties held one process here (or none), and read
    /// as a list of it.
    #[serde(default, deserialize_with = "one_or_many")]
    pub added: Vec<Added>,
    /// Bottlenecks that got no replica, with why: the platform could not add one, or the
    /// shop's cores had no room for one more quota. Empty in results from before ties.
    #[serde(default)]
    pub not_replicated: Vec<NotReplicated>,
    /// What the added processes bought, together. None in results from before it was
    /// recorded.
    #[serde(default)]
    pub gain: Option<Gain>,
}

/// How close to the busiest process another must be to tie with it for the bottleneck:
/// within 10 percentage points of its utilisation. A half at 0.1 core for 3 s allows 0.3
/// CPU s, and the kernel counts CPU in 10 ms ticks read at both ends of the window, so two
/// processes equally held back by their quotas read up to ±7 points apart; 10 points
/// covers that and no more, so a clearly lighter process is not scaled for nothing.
pub const TIE_MARGIN: f64 = 0.10;

/// The utilisation both the busiest process and any process tied with it must reach: 80 %
/// of the quota. Above it the process is throttled in many of its CFS periods (a busy
/// request burst hits the quota before the period ends), so it is holding the shop back;
/// below it, one more replica of it adds CPU nobody waited for.
pub const TIE_FLOOR: f64 = 0.80;

/// A bottleneck the second half did not add a replica of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotReplicated {
    /// `gateway`.
    pub process: String,
    /// The platform's refusal, or "no room: …".
    pub why: String,
}

/// `added` as results wrote it before ties (one process or `null`) or since (a list).
/// Written by hand: one untagged enum of serde's, where a crate (serde_with's `OneOrMany`)
/// would be a new dependency of the schema for one field.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Added>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Many(Vec<Added>),
        One(Added),
    }
    Ok(match Option::<Written>::deserialize(deserializer)? {
        Some(Written::Many(added)) => added,
        Some(Written::One(added)) => vec![added],
        None => Vec::new(),
    })
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

/// The capacity the added processes bought: successful requests per second after minus
/// before, and that per core of quota and per MiB of memory they added together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gain {
    pub requests_per_s: f64,
    pub per_cpu: Option<f64>,
    pub per_mib: Option<f64>,
}

impl Gain {
    /// From the two halves and the added processes: per core and per MiB of all of them
    /// together (two tied bottlenecks scaled cost two quotas). Gains are of successful
    /// requests (what the shop delivered), and may be negative: a replica that adds
    /// contention.
    pub fn of(before: &Half, after: &Half, added: &[Added]) -> Gain {
        let requests_per_s = after.successful_per_s() - before.successful_per_s();
        let per = |cost: Option<f64>| {
            cost.filter(|cost| *cost > 0.0)
                .map(|cost| requests_per_s / cost)
        };
        Gain {
            requests_per_s,
            per_cpu: per(total(added, |added| added.cpu_cores)),
            per_mib: per(total(added, |added| added.rss_mib)),
        }
    }
}

/// The sum of what `pick` reads of every added process; `None` where one of them has
/// nothing to read (a process without a quota adds CPU without bound) or none was added.
fn total(added: &[Added], pick: impl Fn(&Added) -> Option<f64>) -> Option<f64> {
    if added.is_empty() {
        return None;
    }
    added.iter().map(pick).sum()
}

/// How far beyond linear a speed-up must be to be flagged: 10 %, above the spread of the
/// quick profile's 3 s halves.
pub const BEYOND_LINEAR_MARGIN: f64 = 0.10;

impl Scale {
    /// The linear speed-up (the scaled component's replicas after over before) where the
    /// measured one exceeds it by more than [`BEYOND_LINEAR_MARGIN`]: the added process gave
    /// more than the CPU it brought, so part of the gain is not capacity (one process held to
    /// a small quota queues its requests through the periods it is throttled in).
    pub fn beyond_linear(&self) -> Option<f64> {
        if self.before.replicas == 0 {
            return None;
        }
        let linear = self.after.replicas as f64 / self.before.replicas as f64;
        (self.speedup > linear * (1.0 + BEYOND_LINEAR_MARGIN)).then_some(linear)
    }

    /// The busiest process against its quota, where there was one; of several at the same
    /// figure, the first listed, as the lab picks (`max_by` would take the last).
    pub fn bottleneck(&self) -> Option<&Utilisation> {
        self.utilisation.iter().reduce(|busiest, next| {
            if next.utilisation > busiest.utilisation {
                next
            } else {
                busiest
            }
        })
    }

    /// `catalog#2 + gateway#2`: the processes the second half added.
    pub fn added_processes(&self) -> String {
        if self.added.is_empty() {
            return self.component.clone();
        }
        self.added
            .iter()
            .map(|added| added.process.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The CPU quota of every added process together (cores); `None` where one had none.
    pub fn added_cpu_cores(&self) -> Option<f64> {
        total(&self.added, |added| added.cpu_cores)
    }

    /// The resident memory of every added process together (MiB); `None` where one was
    /// not read.
    pub fn added_rss_mib(&self) -> Option<f64> {
        total(&self.added, |added| added.rss_mib)
    }

    /// Whether the process named `process` (`catalog`) got a replica.
    pub fn scaled(&self, process: &str) -> bool {
        if self.added.is_empty() {
            return self.component == process;
        }
        self.added
            .iter()
            .any(|added| added.process.split('#').next() == Some(process))
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
        let gain = Gain::of(
            &half(200.0, 0.0),
            &half(400.0, 0.1),
            std::slice::from_ref(&added),
        );
        assert!((gain.requests_per_s - 160.0).abs() < 1e-9, "{gain:?}");
        assert!((gain.per_cpu.unwrap() - 1600.0).abs() < 1e-9, "{gain:?}");
        assert!((gain.per_mib.unwrap() - 8.0).abs() < 1e-9, "{gain:?}");
        // A replica that only adds contention is a loss, said as one.
        let loss = Gain::of(
            &half(300.0, 0.0),
            &half(270.0, 0.0),
            std::slice::from_ref(&added),
        );
        assert!((loss.per_cpu.unwrap() + 300.0).abs() < 1e-9, "{loss:?}");
        // Without a quota or a PID to read there is nothing to divide by.
        let unbounded = Added {
            cpu_cores: None,
            rss_mib: None,
            ..added
        };
        let gain = Gain::of(&half(200.0, 0.0), &half(300.0, 0.0), &[unbounded]);
        assert_eq!((gain.per_cpu, gain.per_mib), (None, None));
        assert!((gain.requests_per_s - 100.0).abs() < 1e-9);
    }

    fn added(process: &str, cpu_cores: Option<f64>, rss_mib: Option<f64>) -> Added {
        Added {
            process: process.to_owned(),
            cpu_cores,
            rss_mib,
        }
    }

    #[test]
    fn two_added_processes_are_priced_per_their_two_quotas_and_their_memory_together() {
        let both = [
            added("catalog#2", Some(0.1), Some(20.0)),
            added("gateway#2", Some(0.1), Some(30.0)),
        ];
        // +160 ok/s over 0.2 cores and 50 MiB.
        let gain = Gain::of(&half(200.0, 0.0), &half(360.0, 0.0), &both);
        assert!((gain.per_cpu.unwrap() - 800.0).abs() < 1e-9, "{gain:?}");
        assert!((gain.per_mib.unwrap() - 3.2).abs() < 1e-9, "{gain:?}");
        // One of them unmeasured: no figure rather than one that leaves its cost out.
        let one_unread = [both[0].clone(), added("gateway#2", Some(0.1), None)];
        let gain = Gain::of(&half(200.0, 0.0), &half(360.0, 0.0), &one_unread);
        assert!(gain.per_cpu.is_some());
        assert_eq!(gain.per_mib, None);
        assert_eq!(
            Gain::of(&half(1.0, 0.0), &half(2.0, 0.0), &[]).per_cpu,
            None
        );
    }

    #[test]
    fn added_reads_one_process_or_none_as_results_wrote_it_before_ties_and_a_list_since() {
        let read = |added: &str| -> Vec<Added> {
            #[derive(Deserialize)]
            struct Holder {
                #[serde(default, deserialize_with = "one_or_many")]
                added: Vec<Added>,
            }
            serde_json::from_str::<Holder>(added).expect("reads").added
        };
        let one = r#"{"process":"catalog#2","cpu_cores":0.1,"rss_mib":21.0}"#;
        assert_eq!(
            read(&format!(r#"{{"added":{one}}}"#)),
            [added("catalog#2", Some(0.1), Some(21.0))]
        );
        assert_eq!(read(r#"{"added":null}"#), []);
        assert_eq!(read("{}"), []);
        let two = read(&format!(
            r#"{{"added":[{one},{{"process":"gateway#2","cpu_cores":0.1,"rss_mib":null}}]}}"#
        ));
        assert_eq!(two.len(), 2);
        assert_eq!(two[1], added("gateway#2", Some(0.1), None));
    }

    #[test]
    fn a_speedup_counts_successes_only() {
        // 200 → 400 requests per second, but the second half failed a quarter of them.
        let speedup = half(200.0, 0.0).speedup_to(&half(400.0, 0.25));
        assert!((speedup - 1.5).abs() < 1e-9, "{speedup}");
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
    /// Successful requests per CPU second (all requests before 2026-12-07).
    pub requests_per_sut_cpu_s: Option<f64>,
}

impl Half {
    /// Requests per second that succeeded.
    pub fn successful_per_s(&self) -> f64 {
        self.requests_per_s * (1.0 - self.error_rate)
    }

    /// `after`'s successful requests per second over this half's: the speed-up a replica
    /// bought. A half that failed some requests did not deliver them, however fast.
    pub fn speedup_to(&self, after: &Half) -> f64 {
        after.successful_per_s() / self.successful_per_s().max(0.001)
    }
}

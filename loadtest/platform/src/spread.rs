//! How a balancer spread requests over the replicas behind it, read from the balancer's own
//! counters: the lab's front door counts the responses each backend gave (the monolith's
//! replicas, or the gateway's), and the gateway counts its calls to each replica of a
//! service (`hop_attempts_total{upstream,replica}`, every attempt including retries). Read
//! before and after a window, the difference is that window's spread.
//!
//! Counted at the balancer rather than scraped from each replica's own `/metrics`: the
//! balancer is the one view every platform offers (a swarm's service replicas are reachable
//! only inside its overlay network), and it names the replicas by the address it sent to.

use std::collections::BTreeMap;

use anyhow::Context as _;
use loadtest_results::component::Component;

/// Where a component's per-replica counters are read.
#[derive(Clone, Debug)]
pub struct SpreadSource {
    /// The `/metrics` URL of the balancer in front of the replicas.
    pub metrics_url: String,
    /// The bearer token the scrape sends: the shop's metrics token for the gateway, whose
    /// `/metrics` requires it (or the admin token); none for the lab's own front door.
    bearer: Option<String>,
    /// The counter family, without `_total`.
    family: &'static str,
    /// A label the sample must have, with its value (the upstream service).
    only: Option<(&'static str, String)>,
    /// The label that names the replica.
    replica_label: &'static str,
    /// Who counted, for the report.
    pub counted_by: &'static str,
}

impl SpreadSource {
    /// The lab's front door, whose backends are `component`'s replicas.
    pub fn front_door(control_url: &str) -> SpreadSource {
        SpreadSource {
            metrics_url: format!("{control_url}/metrics"),
            bearer: None,
            family: "front_door_responses",
            only: None,
            replica_label: "backend",
            counted_by: "the lab's front door: responses per backend",
        }
    }

    /// The gateway, which calls every replica of `component` (a service) itself; its
    /// `/metrics` needs `metrics_token` (or the admin token).
    pub fn gateway(
        gateway_url: &str,
        metrics_token: &str,
        component: Component,
    ) -> anyhow::Result<SpreadSource> {
        let Component::Service(context) = component else {
            anyhow::bail!("the gateway balances services, not {component}");
        };
        Ok(SpreadSource {
            metrics_url: format!("{gateway_url}/metrics"),
            bearer: Some(metrics_token.to_owned()),
            family: "hop_attempts",
            only: Some(("upstream", context.to_string())),
            replica_label: "replica",
            counted_by: "the gateway: calls per replica (hop_attempts_total, retries included)",
        })
    }

    /// The counters now, by replica.
    pub async fn read(&self, http: &reqwest::Client) -> anyhow::Result<BTreeMap<String, f64>> {
        let mut request = http.get(&self.metrics_url);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let text = request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {}", self.metrics_url))?
            .text()
            .await
            .with_context(|| format!("read {}", self.metrics_url))?;
        self.counters_in(&text)
    }

    fn counters_in(&self, text: &str) -> anyhow::Result<BTreeMap<String, f64>> {
        let mut counters = BTreeMap::new();
        for (labels, value) in counter(text, self.family, &self.metrics_url)? {
            if let Some((label, wanted)) = &self.only
                && labels.get(label) != Some(wanted.as_str())
            {
                continue;
            }
            if let Some(replica) = labels.get(self.replica_label) {
                counters.insert(replica.to_owned(), value);
            }
        }
        Ok(counters)
    }
}

/// Every sample of the counter `family` (`_total` or not) in a `/metrics` text, with its
/// labels; `source` names the text in an error.
fn counter(
    text: &str,
    family: &str,
    source: &str,
) -> anyhow::Result<Vec<(prometheus_parse::Labels, f64)>> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .with_context(|| format!("parse {source}"))?;
    let name = format!("{family}_total");
    let mut samples = Vec::new();
    for sample in scrape.samples {
        if sample.metric != name && sample.metric != family {
            continue;
        }
        let value = match sample.value {
            prometheus_parse::Value::Counter(value) | prometheus_parse::Value::Untyped(value) => {
                value
            }
            other => anyhow::bail!("{name} in {source} is not a counter: {other:?}"),
        };
        samples.push((sample.labels, value));
    }
    Ok(samples)
}

/// The calls into one context (or into every context) and the attempts they took, summed
/// over every caller: each process counts its own (`hop_calls_total{upstream}` once per
/// call, whatever its outcome; `hop_attempts_total{upstream,replica}` once per request sent,
/// retries and panic calls included). Read before and after a window, the difference's
/// [`attempts_per_call`](HopCount::attempts_per_call) is that window's retry amplification.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HopCount {
    pub calls: f64,
    pub attempts: f64,
}

impl HopCount {
    /// The counters of the processes at `metrics_urls` (scraped with the shop's
    /// `metrics_token`, or its admin token) for calls into `upstream`, or into every context
    /// when it is `None`. A process that does not answer fails the read: a sum with a caller
    /// missing would understate it.
    pub async fn read(
        http: &reqwest::Client,
        metrics_urls: &[String],
        metrics_token: &str,
        upstream: Option<domain::Context>,
    ) -> anyhow::Result<HopCount> {
        let mut total = HopCount::default();
        for url in metrics_urls {
            let text = http
                .get(url)
                .bearer_auth(metrics_token)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("GET {url}"))?
                .text()
                .await
                .with_context(|| format!("read {url}"))?;
            let one = HopCount::of(&text, upstream, url)?;
            total.calls += one.calls;
            total.attempts += one.attempts;
        }
        Ok(total)
    }

    fn of(text: &str, upstream: Option<domain::Context>, source: &str) -> anyhow::Result<HopCount> {
        let upstream = upstream.map(|context| context.to_string());
        let sum = |family: &str| -> anyhow::Result<f64> {
            Ok(counter(text, family, source)?
                .into_iter()
                .filter(|(labels, _)| {
                    upstream
                        .as_deref()
                        .is_none_or(|upstream| labels.get("upstream") == Some(upstream))
                })
                .map(|(_, value)| value)
                .sum())
        };
        Ok(HopCount {
            calls: sum("hop_calls")?,
            attempts: sum("hop_attempts")?,
        })
    }

    /// The calls made from `before` to `self` (a counter reset reads as none).
    pub fn calls_since(&self, before: &HopCount) -> u64 {
        (self.calls - before.calls).max(0.0).round() as u64
    }

    /// The attempts sent from `before` to `self`: hops made, retries included.
    pub fn attempts_since(&self, before: &HopCount) -> u64 {
        (self.attempts - before.attempts).max(0.0).round() as u64
    }

    /// Attempts per call from `before` to `self`; `None` when no call was made in between.
    pub fn attempts_per_call(&self, before: &HopCount) -> Option<f64> {
        let calls = self.calls - before.calls;
        (calls >= 1.0).then(|| (self.attempts - before.attempts).max(0.0) / calls)
    }
}

/// `after - before` per replica, for every replica seen after (one that appeared in the
/// window counts from zero; one that left it is not in `after` and had no share to show).
pub fn difference(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(replica, now)| {
            let then = before.get(replica).copied().unwrap_or(0.0);
            // Counters are whole numbers; a reset (a balancer restarted) reads as zero.
            (replica.clone(), (now - then).max(0.0).round() as u64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use domain::Context;

    use super::*;

    const GATEWAY: &str = "\
# HELP hop_attempts_total Calls sent to each replica.
# TYPE hop_attempts_total counter
hop_attempts_total{upstream=\"catalog\",replica=\"10.0.1.5:8080\"} 120
hop_attempts_total{upstream=\"catalog\",replica=\"10.0.1.9:8080\"} 80
hop_attempts_total{upstream=\"orders\",replica=\"10.0.1.7:8080\"} 33
# HELP http_requests_total HTTP requests answered.
# TYPE http_requests_total counter
http_requests_total{method=\"GET\",route=\"/products\",status=\"200\"} 999
";

    #[test]
    fn the_gateway_source_reads_only_its_upstreams_replicas() {
        let source =
            SpreadSource::gateway("http://gw", "t", Component::Service(Context::Catalog)).unwrap();
        let counters = source.counters_in(GATEWAY).unwrap();
        assert_eq!(
            counters.into_iter().collect::<Vec<_>>(),
            vec![
                ("10.0.1.5:8080".to_owned(), 120.0),
                ("10.0.1.9:8080".to_owned(), 80.0)
            ]
        );
    }

    const ORDERS: &str = "\
# TYPE hop_calls_total counter
hop_calls_total{upstream=\"inventory\",outcome=\"ok\"} 70
hop_calls_total{upstream=\"inventory\",outcome=\"unavailable\"} 30
hop_calls_total{upstream=\"payments\",outcome=\"ok\"} 50
# TYPE hop_attempts_total counter
hop_attempts_total{upstream=\"inventory\",replica=\"127.0.0.1:1\"} 90
hop_attempts_total{upstream=\"inventory\",replica=\"127.0.0.1:2\"} 40
hop_attempts_total{upstream=\"payments\",replica=\"127.0.0.1:3\"} 55
";

    #[test]
    fn a_hop_count_sums_one_upstreams_calls_over_outcomes_and_attempts_over_replicas() {
        let count = HopCount::of(ORDERS, Some(Context::Inventory), "orders").unwrap();
        assert_eq!(
            count,
            HopCount {
                calls: 100.0,
                attempts: 130.0
            }
        );
        let before = HopCount {
            calls: 60.0,
            attempts: 80.0,
        };
        assert_eq!(count.attempts_per_call(&before), Some(50.0 / 40.0));
        assert_eq!(count.calls_since(&before), 40);
        assert_eq!(count.attempts_since(&before), 50);
        assert_eq!(count.attempts_per_call(&count), None);
        let every = HopCount::of(ORDERS, None, "orders").unwrap();
        assert_eq!(
            every,
            HopCount {
                calls: 150.0,
                attempts: 185.0
            }
        );
    }

    #[test]
    fn the_gateway_balances_services_only() {
        assert!(SpreadSource::gateway("http://gw", "t", Component::Monolith).is_err());
    }

    #[test]
    fn the_difference_counts_a_new_replica_from_zero_and_a_reset_as_zero() {
        let before = BTreeMap::from([("a".to_owned(), 10.0), ("b".to_owned(), 50.0)]);
        let after = BTreeMap::from([
            ("a".to_owned(), 25.0),
            ("b".to_owned(), 3.0),
            ("c".to_owned(), 7.0),
        ]);
        assert_eq!(
            difference(&before, &after),
            vec![
                ("a".to_owned(), 15),
                ("b".to_owned(), 0),
                ("c".to_owned(), 7)
            ]
        );
    }
}

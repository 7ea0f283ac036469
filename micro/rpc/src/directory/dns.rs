//! Replicas found by DNS. Each context whose configured base URLs name a host (rather than
//! an IP) is looked up every period, and its list becomes one base URL per address the names
//! answer: on Docker Swarm with `endpoint_mode: dnsrr`, one per running task of the service.
//!
//! Looked up with `tokio::net::lookup_host`, that is the system's `getaddrinfo`: the same
//! resolver the HTTP client and the images (static glibc in a scratch container) already
//! rely on, reading the container's `/etc/resolv.conf`. glibc keeps no cache of its own (a
//! scratch image runs no nscd), so every lookup asks the DNS server, which on Swarm answers
//! from its live task table; no resolver crate is needed for fresh answers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use domain::Context;
use tokio::sync::Notify;
use url::Url;

use super::{Directory, Inner};

/// The shortest time between two rounds of lookups, however often clients ask for one: a
/// dead replica fails every call sent to it until its breaker opens, and each failure asks.
const MIN_GAP: Duration = Duration::from_millis(100);

impl Directory {
    /// Starts a task that looks up the names among this directory's base URLs every `period`
    /// (at least 100 ms), and sooner when a client reports a replica that did not answer,
    /// and puts one base URL per address in the context's list (sorted, without duplicates)
    /// when that differs from the list there. A lookup that fails or finds no address keeps
    /// the last list. Contexts given only IP addresses are left alone. The task ends once
    /// every clone of the directory is gone. Call it inside a tokio runtime.
    pub fn resolve_every(&self, period: Duration) {
        let names: BTreeMap<Context, Vec<Url>> = self
            .all()
            .into_iter()
            .filter_map(|(context, replicas)| {
                let urls = replicas
                    .iter()
                    .map(|replica| Url::parse(replica).ok())
                    .collect::<Option<Vec<Url>>>()?;
                let named = urls
                    .iter()
                    .any(|url| matches!(url.host(), Some(url::Host::Domain(_))));
                named.then_some((context, urls))
            })
            .collect();
        if names.is_empty() {
            return;
        }
        let period = period.max(MIN_GAP);
        tracing::info!(
            period_ms = period.as_millis() as u64,
            contexts = ?names.keys().collect::<Vec<_>>(),
            "resolving upstreams by dns"
        );
        let directory = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(resolve(directory, wake, names, period));
    }
}

async fn resolve(
    directory: Weak<Inner>,
    wake: Arc<Notify>,
    names: BTreeMap<Context, Vec<Url>>,
    period: Duration,
) {
    // Contexts whose last lookup failed: a failure is logged when it starts, not every round.
    let mut failing = BTreeSet::new();
    loop {
        let Some(inner) = directory.upgrade() else {
            return;
        };
        let directory = Directory { inner };
        let started = Instant::now();
        let answers = futures::future::join_all(
            names
                .iter()
                .map(|(context, urls)| async move { (*context, lookup(urls).await) }),
        )
        .await;
        for (context, answer) in answers {
            match answer {
                Ok(replicas) => {
                    if failing.remove(&context) {
                        tracing::info!(%context, "upstream names resolve again");
                    }
                    if directory.set_resolved(context, replicas.clone()) {
                        tracing::info!(%context, ?replicas, "upstream replicas changed in dns");
                    }
                }
                Err(error) => {
                    if failing.insert(context) {
                        tracing::warn!(
                            %context,
                            %error,
                            "upstream names did not resolve, keeping the last replica list"
                        );
                    }
                }
            }
        }
        directory.inner.lookups.fetch_add(1, Ordering::AcqRel);
        drop(directory);
        // A wake that came during this round is kept by the Notify and ends the wait at once,
        // but no round starts sooner than MIN_GAP after the last one began.
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = wake.notified() => tokio::time::sleep_until((started + MIN_GAP).into()).await,
        }
    }
}

/// One base URL per address of every named host, the IP ones as they are; an error when a
/// name does not resolve or resolves to nothing.
async fn lookup(urls: &[Url]) -> Result<Vec<String>, String> {
    let mut replicas = BTreeSet::new();
    for url in urls {
        let (Some(url::Host::Domain(name)), Some(port)) = (url.host(), url.port_or_known_default())
        else {
            replicas.insert(base_url(url));
            continue;
        };
        let addresses = tokio::net::lookup_host((name, port))
            .await
            .map_err(|error| format!("{name}: {error}"))?;
        let mut found = false;
        for address in addresses {
            replicas.insert(with_address(url, address.ip()));
            found = true;
        }
        if !found {
            return Err(format!("{name} has no address"));
        }
    }
    Ok(replicas.into_iter().collect())
}

/// `url` with its host replaced by `address` (an IPv6 one in brackets), port and path kept.
fn with_address(url: &Url, address: IpAddr) -> String {
    let mut replica = url.clone();
    // Only fails for URLs that cannot have a host, and this one has one.
    let _ = replica.set_ip_host(address);
    base_url(&replica)
}

/// As the directory keeps base URLs: without the trailing slash `Url` adds.
fn base_url(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_replaces_the_name_and_keeps_port_and_path_with_ipv6_in_brackets() {
        let url = Url::parse("http://tasks.catalog:8080").unwrap();
        let v4: IpAddr = "10.0.1.7".parse().unwrap();
        let v6: IpAddr = "fd00::7".parse().unwrap();
        assert_eq!(with_address(&url, v4), "http://10.0.1.7:8080");
        assert_eq!(with_address(&url, v6), "http://[fd00::7]:8080");
        let url = Url::parse("http://catalog/prefix/").unwrap();
        assert_eq!(with_address(&url, v4), "http://10.0.1.7/prefix");
    }

    #[tokio::test]
    async fn ip_urls_pass_through_and_duplicates_collapse_in_order() {
        let urls: Vec<Url> = [
            "http://127.0.0.2:2",
            "http://127.0.0.1:1",
            "http://127.0.0.2:2",
        ]
        .iter()
        .map(|url| Url::parse(url).unwrap())
        .collect();
        assert_eq!(
            lookup(&urls).await.unwrap(),
            vec!["http://127.0.0.1:1", "http://127.0.0.2:2"]
        );
    }
}

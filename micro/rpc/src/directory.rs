//! Where each context's replicas are, as this process knows it: filled from the
//! `--upstream` flags at start and changed at run time through `PUT /admin/upstreams`, which
//! is how a rolling deploy or a scale-out brings a new replica into rotation and takes the
//! old one out without restarting the callers (the lab's supervisor plays the part a
//! Kubernetes endpoints controller plays).
//!
//! Or found by DNS ([`Directory::resolve_every`], `dns.rs`): on Docker Swarm with
//! `endpoint_mode: dnsrr` no one tells the callers, but `tasks.<service>` answers one address
//! per running task, so a context configured by name gets one replica per address.
//!
//! The two meet in one rule: **a `PUT` wins, for good.** It sets the context's list and
//! stops resolution for that context until the process restarts. An operator or the lab who
//! names the replicas means exactly those; a resolver that put the name's answer back a
//! second later would undo the PUT (and race a rolling deploy the lab drives). Contexts
//! never PUT keep following DNS.
//!
//! Every [`crate::Upstream`] built from a directory checks its version on each call (one
//! atomic load) and rebuilds its balancer when its context's list changed; calls already in
//! flight finish on the replica they were sent to.

mod dns;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use domain::{Context, DomainError, DomainResult};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// `PUT /admin/upstreams` body: the whole replica list of one context.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaList {
    pub context: Context,
    /// Base URLs such as `http://127.0.0.1:4101`; at least one.
    pub replicas: Vec<String>,
}

/// Shared by the clients of one process; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    version: AtomicU64,
    entries: RwLock<BTreeMap<Context, Entry>>,
    /// Asks the resolver, if one runs, for a lookup before its period is up: a client sends
    /// it when a replica did not answer (it may have moved).
    wake: Arc<Notify>,
    /// Resolver rounds done, every context looked up once per round.
    lookups: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    replicas: Vec<String>,
    /// Set by `PUT /admin/upstreams`: DNS no longer changes this context.
    pinned: bool,
}

impl Directory {
    /// From `context name -> base URLs` (the settings' upstream map); unknown names are
    /// skipped (settings validation reports them).
    pub fn new(upstreams: &BTreeMap<String, Vec<String>>) -> Directory {
        let entries = upstreams
            .iter()
            .filter_map(|(name, urls)| {
                let entry = Entry {
                    replicas: urls.clone(),
                    pinned: false,
                };
                Some((Context::parse(name)?, entry))
            })
            .collect();
        Directory {
            inner: Arc::new(Inner {
                entries: RwLock::new(entries),
                ..Inner::default()
            }),
        }
    }

    /// Bumped by every change.
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    pub fn replicas(&self, context: Context) -> Vec<String> {
        self.read()
            .get(&context)
            .map(|entry| entry.replicas.clone())
            .unwrap_or_default()
    }

    /// Every context this process calls, with its replicas.
    pub fn all(&self) -> BTreeMap<Context, Vec<String>> {
        self.read()
            .iter()
            .map(|(context, entry)| (*context, entry.replicas.clone()))
            .collect()
    }

    /// How many rounds of DNS lookups the resolver has done (0 when none runs).
    pub fn lookups(&self) -> u64 {
        self.inner.lookups.load(Ordering::Acquire)
    }

    /// A replica did not answer: asks the resolver, if one runs, to look its names up again
    /// now rather than at the end of its period (at most one extra round per 100 ms).
    pub(crate) fn replica_unreachable(&self) {
        self.inner.wake.notify_one();
    }

    /// Replaces one context's replicas, and stops DNS from changing them (see the module's
    /// header). Only contexts this process already calls can be changed, and only to a
    /// non-empty list of `http://` URLs.
    pub fn set(&self, list: ReplicaList) -> DomainResult<()> {
        if list.replicas.is_empty() {
            return Err(DomainError::Invalid("replicas must not be empty".into()));
        }
        if let Some(bad) = list
            .replicas
            .iter()
            .find(|url| !url.starts_with("http://") || url.len() > 200)
        {
            return Err(DomainError::Invalid(format!(
                "replica {bad:?} is not an http:// base URL"
            )));
        }
        let mut entries = self.write();
        let Some(entry) = entries.get_mut(&list.context) else {
            return Err(DomainError::Invalid(format!(
                "this process does not call {}",
                list.context
            )));
        };
        *entry = Entry {
            replicas: list.replicas,
            pinned: true,
        };
        self.inner.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// What the resolver found for `context`: applied unless a PUT pinned the context, and
    /// only when it differs (so an unchanged answer rebuilds no balancer). Whether it changed.
    fn set_resolved(&self, context: Context, replicas: Vec<String>) -> bool {
        let mut entries = self.write();
        match entries.get_mut(&context) {
            Some(entry) if !entry.pinned && entry.replicas != replicas => {
                entry.replicas = replicas;
                self.inner.version.fetch_add(1, Ordering::AcqRel);
                true
            }
            _ => false,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Context, Entry>> {
        self.inner
            .entries
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Context, Entry>> {
        self.inner
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let mut upstreams = BTreeMap::new();
        upstreams.insert("catalog".to_owned(), vec!["http://127.0.0.1:1".to_owned()]);
        Directory::new(&upstreams)
    }

    #[test]
    fn a_change_replaces_the_list_and_bumps_the_version() {
        let directory = directory();
        let before = directory.version();
        directory
            .set(ReplicaList {
                context: Context::Catalog,
                replicas: vec!["http://127.0.0.1:2".into(), "http://127.0.0.1:3".into()],
            })
            .unwrap();
        assert_eq!(directory.replicas(Context::Catalog).len(), 2);
        assert!(directory.version() > before);
    }

    #[test]
    fn bad_lists_are_refused_and_change_nothing() {
        let directory = directory();
        for (context, replicas) in [
            (Context::Catalog, vec![]),
            (Context::Catalog, vec!["ftp://x".to_owned()]),
            (Context::Users, vec!["http://127.0.0.1:2".to_owned()]),
        ] {
            let refused = directory.set(ReplicaList { context, replicas });
            assert!(matches!(refused, Err(DomainError::Invalid(_))));
        }
        assert_eq!(
            directory.replicas(Context::Catalog),
            vec!["http://127.0.0.1:1"]
        );
        assert_eq!(directory.version(), 0);
    }
}

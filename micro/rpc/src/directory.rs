//! Where each context's replicas are, as this process knows it: filled from the
//! `--upstream` flags at start and changed at run time through `PUT /admin/upstreams`, which
//! is how a rolling deploy or a scale-out brings a new replica into rotation and takes the
//! old one out without restarting the callers (the lab's supervisor plays the part a
//! Kubernetes endpoints controller plays).
//!
//! Every [`crate::Upstream`] built from a directory checks its version on each call (one
//! atomic load) and rebuilds its balancer when it changed; calls already in flight finish
//! on the replica they were sent to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use domain::{Context, DomainError, DomainResult};
use serde::{Deserialize, Serialize};

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
    replicas: RwLock<BTreeMap<Context, Vec<String>>>,
}

impl Directory {
    /// From `context name -> base URLs` (the settings' upstream map); unknown names are
    /// skipped (settings validation reports them).
    pub fn new(upstreams: &BTreeMap<String, Vec<String>>) -> Directory {
        let replicas = upstreams
            .iter()
            .filter_map(|(name, urls)| Some((Context::parse(name)?, urls.clone())))
            .collect();
        Directory {
            inner: Arc::new(Inner {
                version: AtomicU64::new(0),
                replicas: RwLock::new(replicas),
            }),
        }
    }

    /// Bumped by every change.
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    pub fn replicas(&self, context: Context) -> Vec<String> {
        self.read().get(&context).cloned().unwrap_or_default()
    }

    /// Every context this process calls, with its replicas.
    pub fn all(&self) -> BTreeMap<Context, Vec<String>> {
        self.read().clone()
    }

    /// Replaces one context's replicas. Only contexts this process already calls can be
    /// changed, and only to a non-empty list of `http://` URLs.
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
        let mut replicas = self
            .inner
            .replicas
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(current) = replicas.get_mut(&list.context) else {
            return Err(DomainError::Invalid(format!(
                "this process does not call {}",
                list.context
            )));
        };
        *current = list.replicas;
        self.inner.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Context, Vec<String>>> {
        self.inner
            .replicas
            .read()
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

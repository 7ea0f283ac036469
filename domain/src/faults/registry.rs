//! The registry of in-process faults, switched on and off by the admin API, injected at the
//! entry of a context's code path. Which kinds exist and their parameters: the catalogue.
//!
//! The registry lives in the process that runs the context. In the monolith that is the one
//! shared process, so `abort` takes the whole shop down and `cpu_hog` / `leak` starve every
//! context: that is the monolith's honest behaviour, not a bug of the lab.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::catalogue::{self, Fault, Layer};
use crate::{Context, DomainError, DomainResult, now_ms};

/// The longest a fault may be switched on for in one request.
pub const MAX_FAULT_DURATION_MS: u64 = 3_600_000;

/// `POST /admin/faults` body, as received.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub context: String,
    /// An in-process kind of the catalogue: `latency | errors | hang | abort | cpu_hog | leak`.
    pub kind: String,
    /// The kind's parameters (the catalogue's, defaults filled in): latency `{"ms"}`,
    /// errors `{"rate"}`, cpu_hog `{"threads"}`, leak `{"mb_per_sec","max_mb"}`.
    #[serde(default)]
    pub params: serde_json::Value,
    /// Switched off by itself after this long; absent means until `DELETE /admin/faults`.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// A fault switched on in this process; always of an in-process kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActiveFault {
    pub id: u64,
    pub context: crate::Context,
    #[serde(flatten)]
    pub fault: Fault,
    pub started_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

impl FaultRequest {
    /// The context, the typed fault and its duration, checked against the catalogue. Only
    /// in-process kinds are switched here; the others are realized by the lab's platforms.
    pub fn validate(&self) -> DomainResult<(Context, Fault, Option<u64>)> {
        let context = Context::parse(&self.context)
            .ok_or_else(|| DomainError::Invalid(format!("unknown context {:?}", self.context)))?;
        if let Some(spec) = catalogue::spec(&self.kind)
            && spec.layer != Layer::InProcess
        {
            let in_process: Vec<&str> = catalogue::catalogue()
                .iter()
                .filter(|spec| spec.layer == Layer::InProcess)
                .map(|spec| spec.name)
                .collect();
            return Err(DomainError::Invalid(format!(
                "fault kind {:?} is a {} fault the lab realizes itself; this API switches {}",
                self.kind,
                spec.layer.as_str(),
                in_process.join(", ")
            )));
        }
        let fault = catalogue::validate(&self.kind, &self.params)?;
        if let Some(duration_ms) = self.duration_ms
            && !(1..=MAX_FAULT_DURATION_MS).contains(&duration_ms)
        {
            return Err(DomainError::Invalid(format!(
                "duration_ms must be between 1 and {MAX_FAULT_DURATION_MS}"
            )));
        }
        Ok((context, fault, self.duration_ms))
    }
}

/// The faults switched on in this process. Cheap to clone; one per process.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Checked without a lock on every call, so a fault-free process pays one atomic load.
    any_active: AtomicBool,
    next_id: AtomicU64,
    active: Mutex<Vec<Running>>,
    changed: tokio::sync::Notify,
}

struct Running {
    fault: ActiveFault,
    /// Tells background burners (cpu_hog, leak) to stop.
    stop: Arc<AtomicBool>,
}

impl Faults {
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Switches a validated fault on and returns it.
    pub fn inject(&self, request: &FaultRequest) -> DomainResult<ActiveFault> {
        let (context, fault, duration_ms) = request.validate()?;
        let started_at_ms = now_ms();
        let fault = ActiveFault {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            context,
            fault,
            started_at_ms,
            expires_at_ms: duration_ms.map(|ms| started_at_ms + ms as i64),
        };
        let stop = Arc::new(AtomicBool::new(false));
        match fault.fault {
            Fault::CpuHog { threads } => spawn_cpu_hog(threads, fault.expires_at_ms, stop.clone()),
            Fault::Leak { mb_per_sec, max_mb } => {
                spawn_leak(mb_per_sec, max_mb, fault.expires_at_ms, stop.clone())
            }
            _ => {}
        }
        tracing::warn!(fault.id = fault.id, fault.context = %context, fault.kind = fault.fault.name(), "fault injected");
        let mut active = self
            .inner
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        active.push(Running {
            fault: fault.clone(),
            stop,
        });
        self.inner.any_active.store(true, Ordering::Release);
        Ok(fault)
    }

    /// The faults still in force.
    pub fn list(&self) -> Vec<ActiveFault> {
        let mut active = self
            .inner
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        prune_expired(&mut active);
        active.iter().map(|running| running.fault.clone()).collect()
    }

    /// Switches every fault off (or those of one context) and returns how many there were.
    pub fn clear(&self, context: Option<Context>) -> usize {
        let mut active = self
            .inner
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let before = active.len();
        active.retain(|running| {
            let matches = context.is_none_or(|context| running.fault.context == context);
            if matches {
                running.stop.store(true, Ordering::Release);
            }
            !matches
        });
        let cleared = before - active.len();
        self.inner
            .any_active
            .store(!active.is_empty(), Ordering::Release);
        drop(active);
        self.inner.changed.notify_waiters();
        tracing::info!(faults.cleared = cleared, "faults cleared");
        cleared
    }

    /// Called at the entry of every operation of `context`: applies whatever is switched on.
    pub async fn enter(&self, context: Context) -> DomainResult<()> {
        if !self.inner.any_active.load(Ordering::Acquire) {
            return Ok(());
        }
        let effects: Vec<(Fault, Option<i64>)> = {
            let mut active = self
                .inner
                .active
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            prune_expired(&mut active);
            active
                .iter()
                .filter(|running| running.fault.context == context)
                .map(|running| (running.fault.fault, running.fault.expires_at_ms))
                .collect()
        };
        for (fault, expires_at_ms) in effects {
            match fault {
                Fault::Latency { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
                Fault::Errors { rate } => {
                    if rand::rng().random_bool(rate) {
                        return Err(DomainError::Unavailable(format!(
                            "injected fault in {context}"
                        )));
                    }
                }
                Fault::Hang => self.hang(context, expires_at_ms).await,
                Fault::Abort => {
                    tracing::error!(fault.context = %context, "abort fault: aborting the process");
                    std::process::abort();
                }
                // The hog and the leak run in threads of their own from the moment they are
                // switched on.
                Fault::CpuHog { .. } | Fault::Leak { .. } => {}
                // Never switched on here: `FaultRequest::validate` refuses the kinds the lab
                // realizes itself.
                Fault::Kill
                | Fault::Pause
                | Fault::NetLatency { .. }
                | Fault::NetReset
                | Fault::NetCut
                | Fault::NetBandwidth { .. }
                | Fault::NetTruncate { .. }
                | Fault::CpuLimit { .. }
                | Fault::DbDown => {}
            }
        }
        Ok(())
    }

    /// Waits until the hang ends: it expires, or the faults of this context are cleared.
    async fn hang(&self, context: Context, expires_at_ms: Option<i64>) {
        loop {
            let changed = self.inner.changed.notified();
            let still_hanging = self
                .list()
                .iter()
                .any(|fault| fault.context == context && fault.fault == Fault::Hang);
            if !still_hanging {
                return;
            }
            match expires_at_ms {
                Some(expires_at_ms) => {
                    let left = u64::try_from(expires_at_ms - now_ms()).unwrap_or(0);
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(Duration::from_millis(left)) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

fn prune_expired(active: &mut Vec<Running>) {
    let now = now_ms();
    active.retain(|running| {
        let alive = running
            .fault
            .expires_at_ms
            .is_none_or(|expires| expires > now);
        if !alive {
            running.stop.store(true, Ordering::Release);
        }
        alive
    });
}

fn burner_should_stop(stop: &AtomicBool, expires_at_ms: Option<i64>) -> bool {
    stop.load(Ordering::Acquire) || expires_at_ms.is_some_and(|expires| now_ms() >= expires)
}

/// OS threads, not tokio tasks: a hog must compete for the CPU the way a runaway loop in a
/// real module would, not politely yield to the runtime.
fn spawn_cpu_hog(threads: u64, expires_at_ms: Option<i64>, stop: Arc<AtomicBool>) {
    for _ in 0..threads {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut spin: u64 = 0;
            while !burner_should_stop(&stop, expires_at_ms) {
                for _ in 0..100_000 {
                    spin = std::hint::black_box(
                        spin.wrapping_mul(6364136223846793005).wrapping_add(1),
                    );
                }
            }
        });
    }
}

/// Allocates and touches memory every 100 ms (so it shows in RSS), holds it while the fault
/// lasts, frees it when the fault ends.
fn spawn_leak(mb_per_sec: u64, max_mb: u64, expires_at_ms: Option<i64>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut held: Vec<Vec<u8>> = Vec::new();
        let chunk_bytes = (mb_per_sec as usize * 1024 * 1024) / 10;
        let cap_bytes = max_mb as usize * 1024 * 1024;
        while !burner_should_stop(&stop, expires_at_ms) {
            let held_bytes: usize = held.iter().map(Vec::len).sum();
            if held_bytes + chunk_bytes <= cap_bytes {
                held.push(vec![1u8; chunk_bytes.max(1)]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(context: &str, kind: &str, params: serde_json::Value) -> FaultRequest {
        FaultRequest {
            context: context.into(),
            kind: kind.into(),
            params,
            duration_ms: None,
        }
    }

    #[test]
    fn unknown_contexts_kinds_and_bad_params_are_invalid() {
        let faults = Faults::new();
        for bad in [
            request("shipping", "latency", serde_json::json!({})),
            request("catalog", "meteor", serde_json::json!({})),
            request("catalog", "latency", serde_json::json!({"ms": -1})),
            request("catalog", "errors", serde_json::json!({"rate": 1.5})),
            request("catalog", "cpu_hog", serde_json::json!({"threads": 99})),
            request("catalog", "latency", serde_json::json!([1])),
            request("catalog", "latency", serde_json::json!({"colour": "red"})),
            request("catalog", "kill", serde_json::json!({})),
            request("catalog", "net_latency", serde_json::json!({"ms": 300})),
        ] {
            assert!(
                matches!(faults.inject(&bad), Err(DomainError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(faults.list().is_empty());
    }

    #[test]
    fn a_fault_the_lab_realizes_itself_is_refused_naming_its_layer() {
        let refused = Faults::new().inject(&request("payments", "db_down", serde_json::json!({})));
        let Err(DomainError::Invalid(message)) = refused else {
            panic!("db_down was switched on in-process: {refused:?}");
        };
        assert!(
            message.contains("dependency") && message.contains("latency, errors"),
            "{message}"
        );
    }

    #[test]
    fn an_injected_fault_carries_the_catalogue_defaults_for_params_left_out() {
        let faults = Faults::new();
        let fault = faults
            .inject(&request("catalog", "latency", serde_json::Value::Null))
            .unwrap();
        assert_eq!(fault.fault, Fault::Latency { ms: 300 });
        let listed = serde_json::to_value(&faults.list()[0]).unwrap();
        assert_eq!(listed["kind"], "latency");
        assert_eq!(listed["ms"], 300);
        faults.clear(None);
    }

    #[tokio::test]
    async fn an_error_fault_hits_its_own_context_only_and_clearing_heals() {
        let faults = Faults::new();
        faults
            .inject(&request(
                "recommendations",
                "errors",
                serde_json::json!({"rate": 1.0}),
            ))
            .unwrap();
        assert!(matches!(
            faults.enter(Context::Recommendations).await,
            Err(DomainError::Unavailable(_))
        ));
        assert!(faults.enter(Context::Catalog).await.is_ok());
        assert_eq!(faults.clear(None), 1);
        assert!(faults.enter(Context::Recommendations).await.is_ok());
    }

    #[tokio::test]
    async fn a_hang_is_released_when_the_fault_is_cleared() {
        let faults = Faults::new();
        faults
            .inject(&request("catalog", "hang", serde_json::Value::Null))
            .unwrap();
        let hung = tokio::spawn({
            let faults = faults.clone();
            async move { faults.enter(Context::Catalog).await }
        });
        tokio::task::yield_now().await;
        assert!(!hung.is_finished());
        faults.clear(Some(Context::Catalog));
        hung.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_expired_fault_is_gone() {
        let faults = Faults::new();
        let mut expiring = request("cart", "errors", serde_json::json!({"rate": 1.0}));
        expiring.duration_ms = Some(1);
        faults.inject(&expiring).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(faults.list().is_empty());
        assert!(faults.enter(Context::Cart).await.is_ok());
    }
}

//! Self-healing: a process of the deployment that exits is started again, under one restart
//! policy written once for both who run a [`Deployment`] — the lab's `local` platform
//! (`Platform::self_heal_until`, during the fault experiments) and `shoplab serve micro`
//! (for as long as it serves). Every exit is logged at warn with its exit code or signal,
//! every restart at info with the new PID, every failed restart at error.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use nix::sys::signal::Signal;

use super::{Component, Deployment, Member};
use crate::Restart;

/// When an exited process is started again: looked for every `poll`, restarted at once, as
/// a process manager or Kubernetes would; a component that exits again within
/// `crash_loop_window` of its last restart waits a backoff that doubles from
/// `first_backoff` up to `max_backoff`, so a process that cannot start does not spin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub poll: Duration,
    pub crash_loop_window: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    /// 50 ms polls; within 10 s, 0 ms, 250 ms, 500 ms, ... up to 4 s. The first restart
    /// waits for nothing: the lab times how fast a crash heals, and a process manager's own
    /// delay would only be added to every build alike.
    fn default() -> RestartPolicy {
        RestartPolicy {
            poll: Duration::from_millis(50),
            crash_loop_window: Duration::from_secs(10),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RestartPolicy {
    /// The wait before a restart of a component restarted `recent` times within the
    /// crash-loop window.
    pub fn backoff(&self, recent: u32) -> Duration {
        match recent {
            0 => Duration::ZERO,
            crashes => (self.first_backoff * 2u32.pow(crashes.min(5) - 1)).min(self.max_backoff),
        }
    }
}

/// How a process ended, for the log: its exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ending {
    code: Option<i32>,
    signal: Option<&'static str>,
}

impl Ending {
    fn of(status: Option<ExitStatus>) -> Ending {
        Ending {
            code: status.and_then(|status| status.code()),
            signal: status
                .and_then(|status| status.signal())
                .map(|number| Signal::try_from(number).map_or("unknown", Signal::as_str)),
        }
    }
}

impl Deployment {
    /// Restarts every process that exits, under the deployment's [`RestartPolicy`]
    /// (`Options::restart_policy`), until `stop` resolves; returns each restart. `stop` is
    /// looked at between rounds, so a restart under way finishes; a caller that must stop at
    /// once drops this future instead (a process being started is then killed, and the
    /// member keeps its exited process, which [`Deployment::stop`] handles).
    pub async fn heal_until(&mut self, stop: impl Future<Output = ()>) -> Vec<Restart> {
        let policy = self.options.restart_policy;
        let mut restarts: Vec<Restart> = Vec::new();
        tokio::pin!(stop);
        while (&mut stop).now_or_never().is_none() {
            self.restart_exited_under(&policy, &mut restarts).await;
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(policy.poll) => {}
            }
        }
        restarts
    }

    /// One round: every process that has exited is logged, waits its backoff and is started
    /// again on its port.
    async fn restart_exited_under(&mut self, policy: &RestartPolicy, restarts: &mut Vec<Restart>) {
        for (component, replica) in self.exited() {
            let detected = Instant::now();
            self.log_exit(component, replica);
            let recent = restarts
                .iter()
                .filter(|restart| restart.component == component.to_string())
                .filter(|restart| detected.duration_since(restart.at) < policy.crash_loop_window)
                .count() as u32;
            let backoff = policy.backoff(recent);
            tokio::time::sleep(backoff).await;
            let restarted = self.restart(component, replica).await;
            let restart = Restart {
                component: component.to_string(),
                at: detected,
                backoff_ms: backoff.as_millis() as u64,
                down_ms: detected.elapsed().as_millis() as u64,
                error: restarted.err().map(|error| format!("{error:#}")),
            };
            let process = format!("{component}#{replica}");
            match &restart.error {
                None => tracing::info!(
                    process = %process,
                    component = %component,
                    replica,
                    pid = self.member(component, replica).ok().map(Member::pid),
                    backoff_ms = restart.backoff_ms,
                    down_ms = restart.down_ms,
                    "process restarted"
                ),
                // Logged here, where it is handled: the next round tries again if it exited.
                Some(error) => tracing::error!(
                    process = %process,
                    component = %component,
                    replica,
                    backoff_ms = restart.backoff_ms,
                    error = %error,
                    "process restart failed"
                ),
            }
            restarts.push(restart);
        }
    }

    fn log_exit(&self, component: Component, replica: usize) {
        let Ok(member) = self.member(component, replica) else {
            return;
        };
        let ending = Ending::of(member.process.exit_status());
        let process = format!("{component}#{replica}");
        tracing::warn!(
            process = %process,
            component = %component,
            replica,
            pid = member.pid(),
            exit.code = ending.code,
            exit.signal = ending.signal,
            "process exited"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::ExitStatus;
    use std::time::Duration;

    use super::{Ending, RestartPolicy};

    #[test]
    fn a_crash_loop_backs_off_doubling_up_to_four_seconds() {
        let policy = RestartPolicy::default();
        let waits: Vec<Duration> = (0..8).map(|recent| policy.backoff(recent)).collect();
        let millis = |ms| Duration::from_millis(ms);
        assert_eq!(
            waits,
            [
                millis(0),
                millis(250),
                millis(500),
                millis(1_000),
                millis(2_000),
                millis(4_000),
                millis(4_000),
                millis(4_000)
            ]
        );
    }

    #[test]
    fn an_exit_is_told_by_its_code_or_by_the_signal_that_killed_it() {
        // Wait statuses as the kernel encodes them: the code in the high byte, a signal low.
        assert_eq!(
            Ending::of(Some(ExitStatus::from_raw(9))),
            Ending {
                code: None,
                signal: Some("SIGKILL")
            }
        );
        assert_eq!(
            Ending::of(Some(ExitStatus::from_raw(3 << 8))),
            Ending {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(
            Ending::of(None),
            Ending {
                code: None,
                signal: None
            }
        );
    }
}

//! One child process of a deployment: spawned with its flags, its output read line by line
//! (the `listening on` line gives its address; the rest is forwarded or kept as a tail for
//! error messages), signalled and reaped by PID.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::cgroup::{self, Confinement, ProcessLimits};

/// Set in every child's environment; the child asks the kernel to kill it when this process
/// dies (see [`die_with_supervisor`]).
pub const SUPERVISOR_PID: &str = "SHOPLAB_SUPERVISOR_PID";

/// How many of a child's last output lines are kept for error messages.
const TAIL_LINES: usize = 40;

/// What it takes to start (and restart) one child.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    /// `catalog#1`: prefixes forwarded lines and names the child in errors.
    pub label: String,
    pub program: PathBuf,
    /// Every flag but `--port`, which is chosen per start.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub forward_logs: bool,
    /// Held to these from its start (cgroups; none by default).
    pub limits: ProcessLimits,
}

impl Launch {
    /// The value after `flag`, if present.
    pub fn flag(&self, flag: &str) -> Option<&str> {
        let at = self.args.iter().position(|arg| arg == flag)?;
        self.args.get(at + 1).map(String::as_str)
    }

    /// Removes `flag` and its value, if present.
    pub fn remove_flag(&mut self, flag: &str) {
        if let Some(at) = self.args.iter().position(|arg| arg == flag) {
            self.args.drain(at..(at + 2).min(self.args.len()));
        }
    }

    /// Replaces the value after `flag` (or appends the flag).
    pub fn set_flag(&mut self, flag: &str, value: &str) {
        match self.args.iter().position(|arg| arg == flag) {
            Some(at) if at + 1 < self.args.len() => self.args[at + 1] = value.to_owned(),
            _ => self.args.extend([flag.to_owned(), value.to_owned()]),
        }
    }
}

/// The addresses a child printed once it was ready to serve.
#[derive(Clone, Debug)]
pub(crate) struct Addresses {
    pub url: String,
    /// The gateway's admin port; `None` for the services.
    pub admin_url: Option<String>,
}

pub(crate) struct Process {
    child: Child,
    pid: u32,
    label: String,
    tail: Arc<Mutex<VecDeque<String>>>,
    exited: Option<ExitStatus>,
    /// Its cgroups while it runs; removed once it has been reaped.
    confinement: Option<Confinement>,
}

impl Process {
    /// Spawns the child on `port` (0 = any) and waits up to `deadline` for its address.
    pub async fn spawn(
        launch: &Launch,
        port: u16,
        deadline: Duration,
    ) -> anyhow::Result<(Process, Addresses)> {
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .args(["--port", &port.to_string()])
            .envs(launch.env.iter().map(|(name, value)| (name, value)))
            .env(SUPERVISOR_PID, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a Ctrl-C in the terminal reaches only the supervisor,
            // which then stops the children in order (gateway first) instead of all at once.
            .process_group(0)
            // A `Deployment` dropped without `stop` (a failed test, a panic) still ends them.
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {} ({})", launch.label, launch.program.display()))?;
        let pid = child
            .id()
            .with_context(|| format!("{} has no pid", launch.label))?;
        // Confined before it can serve: the limits hold from its first request on.
        let confinement = if launch.limits.is_none() {
            None
        } else {
            Some(
                cgroup::confine(pid, &launch.limits)
                    .with_context(|| format!("hold {} to {:?}", launch.label, launch.limits))?,
            )
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = oneshot::channel();
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        tokio::spawn(pump(stdout, launch.clone(), tail.clone(), Some(address_tx)));
        tokio::spawn(pump(stderr, launch.clone(), tail.clone(), None));
        let mut process = Process {
            child,
            pid,
            label: launch.label.clone(),
            tail,
            exited: None,
            confinement,
        };
        let addresses = match tokio::time::timeout(deadline, address_rx).await {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(_)) => {
                // Give the exit a moment to be reaped and its last words to be read.
                let _ = tokio::time::timeout(Duration::from_secs(2), process.child.wait()).await;
                anyhow::bail!(
                    "{} exited before it listened; its last output:\n{}",
                    launch.label,
                    process.tail()
                );
            }
            Err(_) => anyhow::bail!(
                "{} did not print its address within {deadline:?}; its last output:\n{}",
                launch.label,
                process.tail()
            ),
        };
        Ok((process, addresses))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Holds the running child to `cores` of CPU time from now on (`None`: lifts the
    /// quota). What is in force, in the cgroup files' words; `None` once it has exited.
    pub fn set_cpu_quota(&mut self, cores: Option<f64>) -> anyhow::Result<Option<String>> {
        if self.has_exited() {
            return Ok(None);
        }
        let pid = self.pid;
        let in_force = self
            .confinement
            .get_or_insert_with(|| Confinement::none(pid))
            .set_cpu(cores)
            .with_context(|| format!("hold {} (pid {pid}) to a CPU quota", self.label))?;
        Ok(Some(in_force))
    }

    /// The CPU quota in force on the child (cores), read back from its cgroup; `None`
    /// where it has none (or the group cannot be read).
    pub fn cpu_quota(&self) -> Option<f64> {
        self.confinement
            .as_ref()
            .and_then(|confinement| confinement.cpu_quota().ok().flatten())
    }

    /// The child's last output lines, for error messages.
    pub fn tail(&self) -> String {
        let tail = self
            .tail
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether the child has exited (and, if so, reaps it).
    pub fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        if self.exited.is_some() {
            self.confinement = None;
        }
        self.exited.is_some()
    }

    /// How the child ended, once [`Process::has_exited`] or a wait has seen it end.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exited
    }

    /// Sends `signal` by PID, unless the child has already exited and been reaped (its PID
    /// could then belong to someone else).
    pub fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        if self.has_exited() {
            return Ok(());
        }
        kill(Pid::from_raw(self.pid as i32), signal)
            .with_context(|| format!("send {signal} to {} (pid {})", self.label, self.pid))
    }

    /// `kill -9` and reap.
    pub async fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        self.wait().await
    }

    /// Asks the child to stop (SIGTERM; SIGCONT too, in case it is paused, since a stopped
    /// process does not act on SIGTERM).
    pub fn request_stop(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::SIGTERM)?;
        self.signal(Signal::SIGCONT)
    }

    /// Waits up to `deadline` for the child to exit after `request_stop`; then kills it.
    pub async fn finish_stop(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        match tokio::time::timeout(deadline, self.wait()).await {
            Ok(status) => status,
            Err(_) => {
                tracing::warn!(process = %self.label, pid = self.pid, "did not stop in time; killing it");
                self.kill().await
            }
        }
    }

    async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .await
            .with_context(|| format!("wait for {}", self.label))?;
        self.exited = Some(status);
        self.confinement = None;
        Ok(status)
    }
}

/// Reads one output stream to its end: forwards each line (prefixed with the child's label)
/// or only keeps it in the tail; on stdout, also picks out the addresses the child prints.
async fn pump(
    stream: impl AsyncRead + Unpin,
    launch: Launch,
    tail: Arc<Mutex<VecDeque<String>>>,
    mut address_tx: Option<oneshot::Sender<Addresses>>,
) {
    let mut lines = BufReader::new(stream).lines();
    let mut admin_url = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if address_tx.is_some() {
            if let Some(url) = url_after(&line, " admin on ") {
                admin_url = Some(url);
            } else if let Some(url) = url_after(&line, " listening on ")
                && let Some(sender) = address_tx.take()
            {
                let _ = sender.send(Addresses {
                    url,
                    admin_url: admin_url.take(),
                });
            }
        }
        if launch.forward_logs {
            eprintln!("{:>18} | {line}", launch.label);
        }
        let mut tail = tail.lock().unwrap_or_else(|poison| poison.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// `http://ADDR` after `marker` in a line such as `shoplab catalog listening on http://ADDR`.
fn url_after(line: &str, marker: &str) -> Option<String> {
    let rest = line.split_once(marker)?.1.trim();
    rest.starts_with("http://").then(|| rest.to_owned())
}

/// When started by a supervisor, asks the kernel to SIGKILL this process the moment the
/// supervisor dies, however it dies — `kill -9` included, where it gets no chance to stop
/// its children itself.
///
/// This is Linux's `PR_SET_PDEATHSIG`, set by the child on itself as its first act rather
/// than in the parent between `fork` and `exec` (`pre_exec`), which would need `unsafe` code
/// the workspace forbids. Setting it after `exec` leaves a window in which the supervisor
/// may already have died; checking the parent PID afterwards closes it. SIGKILL rather than
/// SIGTERM because a paused (SIGSTOPped) service would sit on a pending SIGTERM forever.
///
/// The signal follows the supervisor's *thread* that spawned the child; the supervisor
/// spawns from its runtime's long-lived threads, which end only with the process.
pub fn die_with_supervisor() -> anyhow::Result<()> {
    let Ok(supervisor) = std::env::var(SUPERVISOR_PID) else {
        return Ok(());
    };
    let supervisor: i32 = supervisor
        .parse()
        .with_context(|| format!("{SUPERVISOR_PID} is not a pid: {supervisor:?}"))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("set the parent-death signal")?;
    anyhow::ensure!(
        nix::unistd::getppid().as_raw() == supervisor,
        "the supervisor (pid {supervisor}) is already gone"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::url_after;

    #[test]
    fn addresses_are_read_from_the_lines_the_services_print() {
        assert_eq!(
            url_after(
                "shoplab catalog listening on http://127.0.0.1:4101",
                " listening on "
            )
            .as_deref(),
            Some("http://127.0.0.1:4101")
        );
        assert_eq!(
            url_after(
                "shoplab gateway admin on http://127.0.0.1:8081",
                " admin on "
            )
            .as_deref(),
            Some("http://127.0.0.1:8081")
        );
        assert_eq!(
            url_after("2026 INFO listening on port", " listening on "),
            None
        );
    }
}

//! The kubernetes target's `kubectl port-forward` child: started on the local ports kubectl
//! picks (or on the ones it had, after a restart), its output drained, killed by PID.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::Kubectl;

/// A `kubectl port-forward` child and the local ports it listens on, remote port -> local.
pub struct PortForward {
    child: tokio::process::Child,
    service: String,
    ports: BTreeMap<u16, u16>,
    /// The last lines the child wrote to stderr, for the error when it dies.
    stderr: Arc<Mutex<Vec<String>>>,
}

/// How long the front may take to answer `/ready` through a new port-forward.
pub(super) const FORWARD_DEADLINE: Duration = Duration::from_secs(30);

impl PortForward {
    /// `kubectl port-forward service/<service>` for these remote ports, on the local ports
    /// given (the same as before, after a restart) or on ports kubectl picks; returns once
    /// kubectl has said where it listens.
    pub async fn start(
        kubectl: &Kubectl,
        service: &str,
        remotes: &[u16],
        locals: Option<&BTreeMap<u16, u16>>,
    ) -> anyhow::Result<PortForward> {
        let mut command = tokio::process::Command::new(&kubectl.program);
        command
            .arg("--namespace")
            .arg(&kubectl.namespace)
            .arg("port-forward")
            .arg(format!("service/{service}"))
            .arg("--address=127.0.0.1");
        for remote in remotes {
            let local = locals
                .and_then(|locals| locals.get(remote))
                .map(u16::to_string)
                .unwrap_or_default();
            command.arg(format!("{local}:{remote}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("run {} port-forward", kubectl.program.display()))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut stderr_lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let tail = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr_lines.next_line().await {
                let mut tail = tail.lock().expect("stderr tail");
                tail.push(line);
                let excess = tail.len().saturating_sub(5);
                tail.drain(..excess);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut ports = BTreeMap::new();
        let read = async {
            while ports.len() < remotes.len() {
                let Some(line) = stdout.next_line().await? else {
                    break;
                };
                if let Some((local, remote)) = forwarding(&line) {
                    ports.insert(remote, local);
                }
            }
            anyhow::Ok(())
        };
        let read = tokio::time::timeout(FORWARD_DEADLINE, read).await;
        if ports.len() < remotes.len() {
            let _ = child.start_kill();
            let said = stderr.lock().expect("stderr tail").join("; ");
            anyhow::bail!(
                "kubectl port-forward service/{service} did not start within {FORWARD_DEADLINE:?} ({}): {said}",
                match read {
                    Ok(Ok(())) => "it ended".to_owned(),
                    Ok(Err(error)) => format!("{error:#}"),
                    Err(_) => "no answer".to_owned(),
                }
            );
        }
        // kubectl prints a line per connection from now on: read and drop them, or the pipe
        // fills up and kubectl stops forwarding.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Ok(PortForward {
            child,
            service: service.to_owned(),
            ports,
            stderr,
        })
    }

    /// `http://127.0.0.1:<local>` for a remote port.
    pub fn url(&self, remote: u16) -> anyhow::Result<String> {
        let local = self
            .ports
            .get(&remote)
            .with_context(|| format!("no port-forward to {}:{remote}", self.service))?;
        Ok(format!("http://127.0.0.1:{local}"))
    }

    /// Remote port -> the local port it is forwarded from.
    pub fn ports(&self) -> &BTreeMap<u16, u16> {
        &self.ports
    }

    /// The child's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the child by its PID and reaps it.
    pub async fn stop(mut self) {
        if self.is_running() {
            let said = self.stderr.lock().expect("stderr tail").join("; ");
            tracing::debug!(service = %self.service, stderr = %said, "stop the port-forward");
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// "Forwarding from 127.0.0.1:41235 -> 8080" -> (41235, 8080). The `[::1]` lines are not
/// used: the lab speaks to 127.0.0.1.
fn forwarding(line: &str) -> Option<(u16, u16)> {
    let rest = line.trim().strip_prefix("Forwarding from 127.0.0.1:")?;
    let (local, remote) = rest.split_once(" -> ")?;
    Some((local.trim().parse().ok()?, remote.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_forwarding_lines_give_local_and_remote_ports() {
        assert_eq!(
            forwarding("Forwarding from 127.0.0.1:41235 -> 8080"),
            Some((41235, 8080))
        );
        assert_eq!(forwarding("Forwarding from [::1]:41235 -> 8080"), None);
        assert_eq!(forwarding("Handling connection for 8080"), None);
    }
}

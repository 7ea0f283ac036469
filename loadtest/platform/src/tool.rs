//! One external command as the container platforms run it (`docker`, `docker-compose`,
//! `kubectl`): bounded by a deadline, killed if it overruns, its stdout the answer and its
//! stderr in the error, so a failed deploy says what the engine or the cluster said.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

/// What to run: the program, the arguments before the call's own, the environment, and what
/// to write to its stdin (a secret that must not appear in `ps`).
pub(crate) struct Call<'a> {
    pub program: &'a str,
    pub leading: &'a [String],
    pub args: &'a [&'a str],
    pub env: &'a [(String, String)],
    pub input: Option<Vec<u8>>,
    pub deadline: Duration,
}

/// Runs the call; its stdout, or an error naming the command with its stderr.
pub(crate) async fn run(call: Call<'_>) -> anyhow::Result<String> {
    let shown = format!(
        "{} {}",
        std::iter::once(call.program)
            .chain(call.leading.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        call.args.join(" ")
    );
    let mut child = tokio::process::Command::new(call.program)
        .args(call.leading)
        .args(call.args)
        .envs(call.env.iter().map(|(name, value)| (name, value)))
        .stdin(if call.input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("run {shown}"))?;
    if let Some(input) = call.input {
        let mut stdin = child.stdin.take().context("stdin is piped")?;
        stdin
            .write_all(&input)
            .await
            .with_context(|| format!("{shown}: write its input"))?;
    }
    let output = tokio::time::timeout(call.deadline, child.wait_with_output())
        .await
        .with_context(|| format!("{shown}: no answer within {:?}", call.deadline))?
        .with_context(|| format!("run {shown}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{shown} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The last `count` lines of a tool's output on one line, for an error message.
pub(crate) fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join(" | ")
}

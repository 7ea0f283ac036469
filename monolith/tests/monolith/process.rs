//! A monolith binary started on a free port with a fresh SQLite database, and stopped (by
//! PID) when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct Process {
    pub child: Child,
    pub base_url: String,
    pub client: reqwest::Client,
    data: Option<tempfile::TempDir>,
}

impl Process {
    /// Starts `monolith --port 0 --seed 7` on a fresh database and waits until it prints its
    /// address and `/ready` answers.
    pub async fn start() -> Process {
        Process::start_on(tempfile::tempdir().expect("temp dir"), &["--seed", "7"]).await
    }

    /// Starts the monolith on the database in `data` (created when missing).
    pub async fn start_on(data: tempfile::TempDir, extra_args: &[&str]) -> Process {
        Process::start_with(data, extra_args, &[]).await
    }

    /// Starts the monolith on the database in `data` with extra `SHOPLAB_*` settings.
    pub async fn start_with(
        data: tempfile::TempDir,
        extra_args: &[&str],
        settings: &[(&str, &str)],
    ) -> Process {
        Process::launch(
            Command::new(env!("CARGO_BIN_EXE_monolith")),
            data,
            extra_args,
            settings,
            Some("test-secret"),
        )
        .await
    }

    /// Starts the monolith on the database in `data` with no `SHOPLAB_TOKEN_SECRET` at all,
    /// so it signs with the secret kept in its database.
    pub async fn start_without_token_secret(
        data: tempfile::TempDir,
        extra_args: &[&str],
    ) -> Process {
        Process::launch(
            Command::new(env!("CARGO_BIN_EXE_monolith")),
            data,
            extra_args,
            &[],
            None,
        )
        .await
    }

    /// Starts the monolith, seeded, under a soft and hard limit of `open_files` descriptors:
    /// util-linux's `prlimit` sets the limit and then runs the monolith in its place (the same
    /// PID).
    pub async fn start_with_open_files(open_files: u32, settings: &[(&str, &str)]) -> Process {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}:{open_files}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_monolith"));
        let data = tempfile::tempdir().expect("temp dir");
        Process::launch(
            command,
            data,
            &["--seed", "7"],
            settings,
            Some("test-secret"),
        )
        .await
    }

    async fn launch(
        mut command: Command,
        data: tempfile::TempDir,
        extra_args: &[&str],
        settings: &[(&str, &str)],
        token_secret: Option<&str>,
    ) -> Process {
        let db = format!("sqlite://{}", data.path().join("shop.db").display());
        command.env_remove("SHOPLAB_TOKEN_SECRET");
        if let Some(secret) = token_secret {
            command.env("SHOPLAB_TOKEN_SECRET", secret);
        }
        let mut child = command
            .args(["--port", "0", "--db", &db])
            .args(extra_args)
            .env("SHOPLAB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SHOPLAB_SEED_PRODUCTS", "20")
            .env("SHOPLAB_SEED_USERS", "2")
            .env("SHOPLAB_SHUTDOWN_DRAIN_MS", "10000")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the monolith binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on ").nth(1) {
                    let _ = address_tx.send(address.trim().to_owned());
                }
            }
        });
        let base_url = address_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the monolith prints its address within 30 s");
        let process = Process {
            child,
            base_url,
            client: reqwest::Client::new(),
            data: Some(data),
        };
        process.wait_ready().await;
        process
    }

    /// The database folder, kept alive for a restart after this process is gone.
    pub fn take_data(&mut self) -> tempfile::TempDir {
        self.data.take().expect("the data folder was already taken")
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.client.get(self.url("/ready")).send().await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the monolith was not ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn inject(&self, fault: serde_json::Value) {
        let response = self
            .client
            .post(self.url("/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&fault)
            .send()
            .await
            .expect("inject a fault");
        assert_eq!(response.status(), 201, "fault {fault} was not accepted");
    }

    pub async fn heal(&self) {
        let response = self
            .client
            .delete(self.url("/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("heal");
        assert_eq!(response.status(), 200);
    }

    /// Waits (up to `deadline`) for the process to exit and returns its status.
    pub fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "the monolith did not exit within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A line of `/proc/<pid>/status` as a number (`Threads`, `VmRSS` in kB).
    pub fn proc_status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Polls `condition` every 20 ms until it holds, failing after `deadline`.
    pub async fn eventually(
        &self,
        deadline: Duration,
        what: &str,
        mut condition: impl FnMut(&Process) -> bool,
    ) {
        let until = Instant::now() + deadline;
        while !condition(self) {
            assert!(
                Instant::now() < until,
                "{what} did not happen within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

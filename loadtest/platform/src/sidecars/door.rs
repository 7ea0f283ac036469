//! A front door on its own, in front of backends the lab did not start itself: the
//! containers of the compose target. Within a [`super::Deployment`] the front door is one
//! member among the others; here it is the only process the lab runs, so it gets a handle
//! of its own (start, move traffic, stop), built from the same child-process code.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use super::front_door::Backends;
use crate::cgroup::ProcessLimits;
use crate::child::{Launch, Process};

/// A running front door.
pub struct FrontDoor {
    process: Process,
    url: String,
    control_url: String,
    http: reqwest::Client,
}

impl FrontDoor {
    /// Starts `shoplab service front-door` on a free loopback port in front of `backends`.
    pub async fn start(
        program: &Path,
        backends: &[String],
        env: &[(String, String)],
        forward_logs: bool,
    ) -> anyhow::Result<FrontDoor> {
        let mut args = vec![
            "service".to_owned(),
            "front-door".to_owned(),
            "--admin-port".to_owned(),
            "0".to_owned(),
        ];
        for backend in backends {
            args.push("--backend".to_owned());
            args.push(backend.clone());
        }
        let launch = Launch {
            label: "front-door#1".to_owned(),
            program: program.to_owned(),
            args,
            env: env.to_vec(),
            forward_logs,
            limits: ProcessLimits::default(),
        };
        let (process, addresses) = Process::spawn(&launch, 0, Duration::from_secs(30)).await?;
        let control_url = addresses
            .admin_url
            .context("the front door printed no control address")?;
        Ok(FrontDoor {
            process,
            url: addresses.url,
            control_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
                .build()?,
        })
    }

    /// The public URL clients use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The control port's URL (`PUT /backends`, `GET /null`).
    pub fn control_url(&self) -> &str {
        &self.control_url
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Replaces the whole backend set; new requests go only to these from now on.
    pub async fn set_backends(&self, backends: &[String]) -> anyhow::Result<()> {
        let url = format!("{}/backends", self.control_url);
        let body = Backends {
            backends: backends.to_vec(),
        };
        put_json(self.http.put(&url), &url, &body).await
    }

    /// SIGTERM, then SIGKILL after `deadline`; reaped either way.
    pub async fn stop(mut self, deadline: Duration) -> anyhow::Result<()> {
        self.process.request_stop()?;
        self.process.finish_stop(deadline).await.map(drop)
    }
}

/// Sends a `PUT` with a JSON body and fails unless it is answered 2xx (with the body of a
/// refusal in the error): how callers and the front door are told where to send traffic.
pub(crate) async fn put_json(
    request: reqwest::RequestBuilder,
    url: &str,
    body: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let response = request
        .json(body)
        .send()
        .await
        .with_context(|| format!("PUT {url}"))?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "PUT {url} answered {status}: {}",
        response.text().await.unwrap_or_default()
    );
    Ok(())
}

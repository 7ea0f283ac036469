//! One remote context as the caller sees it: its replicas, a timeout per call, retries for
//! idempotent calls, and the mapping of answers back to domain results.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::error::ErrorBody;
use domain::{Context, DomainError, DomainResult};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Settings of every hop; recorded with results because they decide how a fault spreads.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct UpstreamSettings {
    /// The whole call, connect to last byte.
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Extra attempts for idempotent calls, each on the next replica.
    pub retries: u32,
}

impl Default for UpstreamSettings {
    fn default() -> UpstreamSettings {
        UpstreamSettings {
            timeout_ms: 2_000,
            connect_timeout_ms: 250,
            retries: 1,
        }
    }
}

#[derive(Clone)]
pub struct Upstream {
    context: Context,
    replicas: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
    settings: UpstreamSettings,
}

/// Whether a call may be repeated without changing the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    Idempotent,
    NotIdempotent,
}

impl Upstream {
    /// `replicas` are base URLs such as `http://127.0.0.1:4101`.
    pub fn new(context: Context, replicas: Vec<String>, settings: UpstreamSettings) -> Upstream {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Upstream {
            context,
            replicas: Arc::new(replicas),
            next: Arc::new(AtomicUsize::new(0)),
            http,
            settings,
        }
    }

    pub fn context(&self) -> Context {
        self.context
    }

    /// Sends one call and decodes the answer. Idempotent calls that fail on the way (no
    /// answer, or 503) are tried again on the next replica, up to `retries` times.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
        idempotency: Idempotency,
    ) -> DomainResult<T> {
        let attempts = match idempotency {
            Idempotency::Idempotent => 1 + self.settings.retries,
            Idempotency::NotIdempotent => 1,
        };
        let mut last_error = DomainError::Unavailable(format!("{} has no replicas", self.context));
        for _ in 0..attempts {
            match self.attempt(method.clone(), path, body).await {
                Ok(value) => return Ok(value),
                Err(error @ DomainError::Unavailable(_)) => last_error = error,
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> DomainResult<T> {
        if self.replicas.is_empty() {
            return Err(DomainError::Unavailable(format!(
                "{} has no replicas",
                self.context
            )));
        }
        let replica =
            &self.replicas[self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len()];
        let mut request = self.http.request(method, format!("{replica}{path}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.unavailable(&error))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.unavailable(&error))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| {
                DomainError::Internal(format!(
                    "{} answered a body that does not parse: {error}",
                    self.context
                ))
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => DomainError::from_code(&body.error.code, body.error.message),
            // No shop error body: something between us and the service answered.
            Err(_) if status.is_server_error() => {
                DomainError::Unavailable(format!("{} answered {status}", self.context))
            }
            Err(_) => DomainError::Internal(format!(
                "{} answered {status} without an error body",
                self.context
            )),
        })
    }

    fn unavailable(&self, error: &reqwest::Error) -> DomainError {
        let what = if error.is_timeout() {
            "timed out"
        } else {
            "did not answer"
        };
        DomainError::Unavailable(format!("{} {what}", self.context))
    }
}

impl Upstream {
    /// Whether at least one replica answers `GET /health`.
    pub async fn probe(&self) -> DomainResult<()> {
        for replica in self.replicas.iter() {
            let answer = self.http.get(format!("{replica}/health")).send().await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
        }
        Err(DomainError::Unavailable(format!(
            "{} is not answering",
            self.context
        )))
    }
}

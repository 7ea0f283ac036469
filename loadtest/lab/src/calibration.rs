//! Calibration, measured in the same run as the experiments it qualifies:
//!
//! - the **null endpoint**: the generator at the sweep's highest load against an HTTP server
//!   on the shop's cores that does nothing (the front door's `GET /null`, 204). Its req/s
//!   is the most this generator can drive on this machine; a throughput level near it says
//!   more about the generator than about the shop.
//! - the **hop ladder**: medians of requests sent one at a time (no queueing) to the null
//!   endpoint, to the monolith's `GET /api/products`, to the same route through the gateway
//!   and to the catalog service behind it directly. Their differences are the parts of one
//!   service boundary: the loopback round trip, the shop's work, the extra hop.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::journeys::{Recorder, null_scenario};
use super::load::{self, LoadPlan};
use loadtest_platform::Target;
use loadtest_results::calibration::{Calibration, HopLadder, NullEndpoint};
use loadtest_results::component::Build;
use loadtest_results::experiments::throughput::GENERATOR_LIMIT;

const LIST: &str = "/api/products?page=1&per_page=20";
const WARM_UP: usize = 50;
const SEQUENTIAL: usize = 400;

/// Collects the calibration over the run: the null endpoint and the monolith's rung on the
/// monolith build, the gateway's and the service's on the micro build.
#[derive(Default)]
pub struct Calibrator {
    null_endpoint: Option<NullEndpoint>,
    null_us: Vec<u64>,
    monolith_us: Vec<u64>,
    service_us: Vec<u64>,
    gateway_us: Vec<u64>,
}

impl Calibrator {
    /// Measures what `target` (just started, data reset) can tell.
    pub async fn measure(
        &mut self,
        target: &mut Target,
        users: usize,
        duration: Duration,
        generator_cores: usize,
    ) -> anyhow::Result<()> {
        let (null_base, catalog) = target.calibration_urls().await?;
        if self.null_endpoint.is_none() {
            self.null_endpoint =
                Some(null_endpoint(&null_base, users, duration, generator_cores).await?);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_idle_timeout(loadtest_platform::CLIENT_POOL_IDLE)
            .build()?;
        let null = format!("{null_base}/null");
        let public = format!("{}{LIST}", target.direct_url());
        match target.build {
            Build::Monolith => {
                let [null_us, monolith_us] = ladder(&http, [&null, &public], None).await?;
                self.null_us.extend(null_us);
                self.monolith_us.extend(monolith_us);
            }
            Build::Micro => {
                let catalog = catalog.context("the platform names no catalog service URL")?;
                let search = format!("{catalog}/internal/catalog/search");
                let token = target.calibration_service_token();
                let service = Rung {
                    url: &search,
                    service_token: token.as_deref(),
                };
                let [null_us, gateway_us, service_us] =
                    ladder(&http, [&null, &public, &search], Some(service)).await?;
                self.null_us.extend(null_us);
                self.gateway_us.extend(gateway_us);
                self.service_us.extend(service_us);
            }
        }
        Ok(())
    }

    /// The calibration, when both builds were measured.
    pub fn finish(self) -> Option<Calibration> {
        let null_endpoint = self.null_endpoint?;
        let hop = HopLadder {
            requests: SEQUENTIAL,
            null_us: median(self.null_us)?,
            monolith_us: median(self.monolith_us)?,
            service_us: median(self.service_us)?,
            gateway_us: median(self.gateway_us)?,
        };
        Some(Calibration { null_endpoint, hop })
    }
}

async fn null_endpoint(
    base_url: &str,
    users: usize,
    duration: Duration,
    generator_cores: usize,
) -> anyhow::Result<NullEndpoint> {
    let plan = LoadPlan {
        base_url: base_url.to_owned(),
        users,
        duration,
        rate: None,
        request_timeout: Duration::from_secs(5),
    };
    let recorder = Recorder::new(Instant::now());
    let run = load::run_scenarios(&plan, vec![null_scenario(&recorder)], &recorder)
        .await
        .context("drive the null endpoint")?;
    let stats = loadtest_results::analysis::stats(&run.records);
    anyhow::ensure!(
        stats.requests > 0 && stats.ok == stats.requests,
        "the null endpoint answered {} of {} requests",
        stats.ok,
        stats.requests
    );
    let generator_cpu_share = run.generator_cpu_s / (run.wall_s * generator_cores.max(1) as f64);
    Ok(NullEndpoint {
        users,
        duration_s: run.wall_s,
        requests_per_s: stats.requests as f64 / run.wall_s,
        latency: stats.latency,
        generator_cpu_share,
        generator_limited: generator_cpu_share > GENERATOR_LIMIT,
    })
}

/// The service's own rung: its URL and the token it is called with.
#[derive(Clone, Copy)]
struct Rung<'a> {
    url: &'a str,
    service_token: Option<&'a str>,
}

/// Sends one request to each URL in turn, `WARM_UP + SEQUENTIAL` rounds, and returns the
/// latencies of each after the warm-up (interleaved, so a slow moment of the machine hits
/// every rung alike). `post` is the service's rung, which takes the catalog's search body
/// and the service token that service requires.
async fn ladder<const N: usize>(
    http: &reqwest::Client,
    urls: [&str; N],
    post: Option<Rung<'_>>,
) -> anyhow::Result<[Vec<u64>; N]> {
    let mut samples: [Vec<u64>; N] = std::array::from_fn(|_| Vec::with_capacity(SEQUENTIAL));
    let search = serde_json::json!({"q": null, "category": null, "page": 1, "per_page": 20});
    for round in 0..WARM_UP + SEQUENTIAL {
        for (rung, url) in urls.iter().enumerate() {
            let request = match post {
                Some(service) if service.url == *url => {
                    let request = http.post(*url).json(&search);
                    match service.service_token {
                        Some(token) => request.header(domain::trust::TOKEN_HEADER, token),
                        None => request,
                    }
                }
                _ => http.get(*url),
            };
            let started = Instant::now();
            let response = request.send().await.with_context(|| format!("GET {url}"))?;
            let status = response.status();
            response.bytes().await?;
            let took = started.elapsed();
            anyhow::ensure!(status.is_success(), "{url} answered {status}");
            if round >= WARM_UP {
                samples[rung].push(took.as_micros() as u64);
            }
        }
    }
    Ok(samples)
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_is_the_middle_value_and_none_of_nothing() {
        assert_eq!(median(vec![5, 1, 9]), Some(5));
        assert_eq!(median(vec![]), None);
    }
}

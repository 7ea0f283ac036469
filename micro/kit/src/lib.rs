//! What every microservice process shares, so each service crate says only what is its own:
//! which context it runs and which internal routes it mounts.
//!
//! A service opens its own database and runs only its own context's migrations; its admin
//! API resets and audits only its own tables; `/ready` means its database and the upstreams
//! it cannot work without answer. It trusts no caller: every internal route verifies the
//! caller's service token with the process's identity (`micro_rpc::trust`), and every call
//! it makes carries its own.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api::Settings;
use api::admin::AdminState;
use api::metrics::{HopMetrics, Metrics, PoolSample};
use api::ops::{OpsState, Readiness};
use async_trait::async_trait;
use domain::admin::{Admin, Audit, ResetRequest, ResetSummary};
use domain::faults::Faults;
use domain::trust::{Identity, Peer};
use domain::users::LoginThrottles;
use domain::{Context, DomainResult, now_ms, seed};
use micro_rpc::{Directory, ReplicaList, Upstream, UpstreamSettings};
use store::{Db, DbOptions, db_error};
use tokio::net::TcpListener;

/// An opened service: its database migrated (and seeded when asked), its fault registry.
pub struct Service {
    pub context: Context,
    pub settings: Settings,
    pub db: Db,
    pub faults: Faults,
    /// This process's registry: its server's series and its upstream clients' hop series.
    pub metrics: Metrics,
    /// Where the contexts this service calls are; changed by `PUT /admin/upstreams`.
    pub directory: Directory,
    /// Who this process is: signs its calls, verifies its callers.
    pub identity: Arc<Identity>,
    admin_token: String,
    /// Opens `/metrics` only (`api::Settings::metrics_token`).
    metrics_token: String,
    /// Set once the process was told to stop: `/ready` then answers 503.
    stopping: api::server::Stopping,
    /// The `users` service's failed-login counts, which its admin reset forgets.
    login_throttles: Option<LoginThrottles>,
}

impl Service {
    pub async fn open(context: Context, mut settings: Settings) -> anyhow::Result<Service> {
        let admin_token = settings.admin_token_or_new(context.as_str());
        let metrics_token = settings.metrics_token_or_new(context.as_str());
        let identity = identity(&settings, Peer::Service(context))?;
        let options = DbOptions {
            max_connections: settings.db_max_connections,
            acquire_timeout: Duration::from_millis(settings.db_acquire_timeout_ms),
        };
        let db = Db::connect(&settings.db, &options)
            .await
            .with_context(|| format!("open the {context} database"))?;
        db.migrate(&[context])
            .await
            .with_context(|| format!("run the {context} migrations"))?;
        let metrics = Metrics::new();
        let pools = db.clone();
        metrics.watch_pools(move || {
            pools
                .pool_use()
                .into_iter()
                .map(|pool| PoolSample {
                    pool: pool.pool,
                    open: pool.open,
                    idle: pool.idle,
                    max: pool.max,
                })
                .collect()
        });
        let service = Service {
            context,
            db,
            faults: Faults::new(),
            metrics,
            directory: directory(&settings),
            identity,
            admin_token,
            metrics_token,
            settings,
            stopping: api::server::Stopping::default(),
            login_throttles: None,
        };
        if let Some(seed) = service.settings.seed {
            let request = ResetRequest {
                products: service.settings.seed_products,
                stock: service.settings.seed_stock,
                users: service.settings.seed_users,
                seed,
            };
            request
                .validate()
                .map_err(|error| anyhow::anyhow!("seed settings: {error}"))?;
            service
                .admin()
                .reset(&request)
                .await
                .map_err(|error| anyhow::anyhow!("seed {context}: {error}"))?;
        }
        Ok(service)
    }

    /// The client of another context, from `settings.upstreams`, reporting its hops into
    /// this service's `/metrics`.
    pub fn upstream(&self, context: Context) -> anyhow::Result<Upstream> {
        upstream(
            &self.settings,
            context,
            &self.directory,
            &self.metrics.hops(),
            &self.identity,
        )
    }

    fn admin(&self) -> ServiceAdmin {
        ServiceAdmin {
            context: self.context,
            db: self.db.clone(),
            login_throttles: self.login_throttles.clone(),
        }
    }

    /// The `users` service's failed-login counts: its admin reset forgets them with the
    /// accounts they counted.
    pub fn forget_on_reset(&mut self, login_throttles: LoginThrottles) {
        self.login_throttles = Some(login_throttles);
    }

    /// Internal routes + admin + ops, with the common layers. `required` are the upstreams
    /// without which this service cannot answer; `/ready` checks them.
    pub fn router(&self, internal: axum::Router, required: Vec<Upstream>) -> axum::Router {
        let metrics = self.metrics.clone();
        let readiness = ServiceReadiness {
            db: self.db.clone(),
            required,
        };
        let ops = OpsState {
            readiness: Arc::new(readiness),
            metrics: metrics.clone(),
            stopping: self.stopping.clone(),
            admin_token: Arc::from(self.admin_token.as_str()),
            metrics_token: Arc::from(self.metrics_token.as_str()),
        };
        let admin = AdminState {
            admin: Arc::new(self.admin()),
            faults: self.faults.clone(),
            token: Arc::from(self.admin_token.as_str()),
        };
        let upstreams = upstreams_router(self.directory.clone()).route_layer(
            axum::middleware::from_fn_with_state(admin.token.clone(), api::admin::require_token),
        );
        // Who calls and until when apply to the internal API only: admin and ops calls come
        // from the lab and operators, who send no service token and no deadline.
        let internal = internal.route_layer(axum::middleware::from_fn_with_state(
            self.identity.clone(),
            micro_rpc::inbound,
        ));
        let router = internal
            .merge(api::admin::router(admin))
            .merge(upstreams)
            .merge(api::ops::router(ops));
        api::server::finish(router, &metrics, self.settings.body_limit_bytes)
    }

    /// Serves `router` until `shutdown`, then closes the database.
    pub async fn serve(
        self,
        router: axum::Router,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = api::server::Limits::of(&self.settings);
        let delay = Duration::from_millis(self.settings.shutdown_delay_ms);
        let shutdown = self.stopping.after(shutdown, delay);
        let address = listener.local_addr()?;
        // Printed once the service is open, so whoever reads this line can start polling.
        println!("shoplab {} listening on http://{address}", self.context);
        tracing::info!(service = %self.context, %address, "service ready to serve");
        let served = api::server::serve(listener, router, shutdown, limits).await;
        self.db.close().await;
        served
    }
}

/// This process's identity from `service_key` and `service_public_keys`. Neither has a
/// default: a process that cannot prove who it is, or check who calls it, does not start.
pub fn identity(settings: &Settings, me: Peer) -> anyhow::Result<Arc<Identity>> {
    // Empty counts as absent: a compose file passes an unset variable on as "".
    let given = |value: &Option<String>| value.clone().filter(|value| !value.trim().is_empty());
    let private_key = given(&settings.service_key).with_context(|| {
        format!(
            "{me} needs its own service_key (SHOPLAB_SERVICE_KEY): every internal call is signed"
        )
    })?;
    let public_keys = given(&settings.service_public_keys).with_context(|| {
        format!("{me} needs service_public_keys (SHOPLAB_SERVICE_PUBLIC_KEYS): every internal call is verified")
    })?;
    let identity = Identity::new(me, &private_key, &public_keys).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(identity))
}

/// The replicas of the contexts a process calls, from the settings' upstream map; with
/// `upstream_resolve_ms` set, kept up to date from DNS (`micro_rpc::directory`). Call it
/// inside a tokio runtime.
pub fn directory(settings: &Settings) -> Directory {
    let directory = Directory::new(&settings.upstreams);
    if settings.upstream_resolve_ms > 0 {
        directory.resolve_every(Duration::from_millis(settings.upstream_resolve_ms));
    }
    directory
}

/// A client for `context` from the settings' upstream map, reporting into `metrics` (the
/// calling process's registry), signing every call as `identity`.
pub fn upstream(
    settings: &Settings,
    context: Context,
    directory: &Directory,
    metrics: &HopMetrics,
    identity: &Arc<Identity>,
) -> anyhow::Result<Upstream> {
    anyhow::ensure!(
        !directory.replicas(context).is_empty(),
        "no upstream configured for {context} (--upstream {context}=URL)"
    );
    Ok(
        Upstream::from_directory(context, directory, upstream_settings(settings), metrics)
            .signed_by(identity.clone()),
    )
}

/// `GET|PUT /admin/upstreams`: read or replace the replicas of a context this process calls
/// (the lab's rolling deploys and scale-outs). Mount it behind the admin token.
pub fn upstreams_router<S: Clone + Send + Sync + 'static>(directory: Directory) -> axum::Router<S> {
    async fn list(
        axum::extract::State(directory): axum::extract::State<Directory>,
    ) -> axum::Json<std::collections::BTreeMap<Context, Vec<String>>> {
        axum::Json(directory.all())
    }
    async fn replace(
        axum::extract::State(directory): axum::extract::State<Directory>,
        api::extract::ApiJson(list): api::extract::ApiJson<ReplicaList>,
    ) -> Result<axum::Json<std::collections::BTreeMap<Context, Vec<String>>>, api::ApiError> {
        directory.set(list)?;
        Ok(axum::Json(directory.all()))
    }
    axum::Router::new()
        .route("/admin/upstreams", axum::routing::get(list).put(replace))
        .with_state(directory)
}

/// The hop settings of a process, as every client of it uses them.
pub fn upstream_settings(settings: &Settings) -> UpstreamSettings {
    UpstreamSettings {
        timeout_ms: settings.hop_timeout_ms,
        connect_timeout_ms: settings.hop_connect_timeout_ms,
        retries: settings.hop_retries,
        retry_backoff_ms: settings.hop_retry_backoff_ms,
        retry_backoff_max_ms: settings.hop_retry_backoff_max_ms,
        retry_budget_ttl_ms: settings.hop_retry_budget_ttl_ms,
        retry_budget_min_per_sec: settings.hop_retry_budget_min_per_sec,
        retry_budget_ratio: settings.hop_retry_budget_ratio,
        breaker_window_ms: settings.hop_breaker_window_ms,
        breaker_min_calls: settings.hop_breaker_min_calls,
        breaker_failure_rate: settings.hop_breaker_failure_rate,
        breaker_no_answer_failures: settings.hop_breaker_no_answer_failures,
        breaker_open_ms: settings.hop_breaker_open_ms,
        breaker_panic_percent: settings.hop_breaker_panic_percent,
    }
}

/// Reset and audit of one context's own tables.
struct ServiceAdmin {
    context: Context,
    db: Db,
    login_throttles: Option<LoginThrottles>,
}

#[async_trait]
impl Admin for ServiceAdmin {
    async fn reset(&self, request: &ResetRequest) -> DomainResult<ResetSummary> {
        let data = seed::generate(request);
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        store::admin::reset_in(&self.db, &mut transaction, self.context, &data).await?;
        transaction.commit().await.map_err(db_error)?;
        if let Some(login_throttles) = &self.login_throttles {
            login_throttles.clear();
        }
        tracing::info!(service = %self.context, seed = request.seed, "service reset");
        Ok(ResetSummary::new(request, data.user_password))
    }

    async fn audit(&self) -> DomainResult<Audit> {
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        let mut audit = Audit {
            taken_at_ms: now_ms(),
            ..Audit::default()
        };
        store::admin::audit_in(&mut connection, self.context, &mut audit).await?;
        Ok(audit)
    }
}

struct ServiceReadiness {
    db: Db,
    required: Vec<Upstream>,
}

#[async_trait]
impl Readiness for ServiceReadiness {
    async fn check(&self) -> DomainResult<()> {
        self.db.ping().await.map_err(db_error)?;
        for upstream in &self.required {
            upstream.probe().await?;
        }
        Ok(())
    }
}

/// Starts a service from command-line flags and serves until SIGTERM/SIGINT; prints the
/// address it listens on (the supervisor reads that line).
pub async fn run<F, Fut>(
    context: Context,
    args: &api::cli::ServeArgs,
    serve: F,
) -> anyhow::Result<()>
where
    F: FnOnce(
        Settings,
        TcpListener,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let settings = args.settings()?;
    api::telemetry::init(&settings.log_format);
    let address = args.address(0);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("bind {context} on {address}"))?;
    serve(settings, listener, Box::pin(api::server::shutdown_signal())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upstream_resolve_ms_turns_dns_lookups_on_and_zero_leaves_the_names_as_given() {
        let named = vec!["http://localhost:4101".to_owned()];
        let mut settings = Settings::default();
        settings.upstreams.insert("catalog".into(), named.clone());
        let off = directory(&settings);
        settings.upstream_resolve_ms = 100;
        let on = directory(&settings);

        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while on.lookups() < 2 {
            assert!(std::time::Instant::now() < deadline, "no lookups in 10 s");
            // A poll interval, not a stand-in for readiness: the count decides.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let resolved = on.replicas(Context::Catalog);
        assert!(!resolved.is_empty() && resolved != named, "{resolved:?}");
        assert!(
            resolved
                .iter()
                .all(|url| url.ends_with(":4101") && !url.contains("localhost")),
            "{resolved:?}"
        );
        assert_eq!(off.lookups(), 0);
        assert_eq!(off.replicas(Context::Catalog), named);
    }
}

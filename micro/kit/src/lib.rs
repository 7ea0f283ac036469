//! What every service process shares, so each service crate says only what is its own:
//! how its context is built and which internal routes it mounts ([`Mount`]).
//!
//! A process hosts a group of contexts (`domain::topology::Group`): one context, as a
//! microservice, or several, as a coarse service of a topology between the monolith and the
//! microservices. It opens one database for the group and runs the group's contexts'
//! migrations only; its admin API resets and audits the group's tables only; `/ready` means
//! its database and the remote contexts its contexts call answer. Co-located contexts call
//! each other in-process through the domain traits, over the shared database ([`links`]);
//! remote ones through the HTTP clients with all their resilience. It trusts no caller:
//! every context's internal routes verify the caller's service token with that context's
//! identity (`micro_rpc::trust`), and every call a context makes carries its own ([`keys`]).

mod admin;
pub mod keys;
pub mod links;

pub use keys::identity;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api::Settings;
use api::admin::AdminState;
use api::metrics::{HopMetrics, Metrics, PoolSample};
use api::ops::{OpsState, Readiness};
use async_trait::async_trait;
use domain::admin::{Admin, ResetRequest};
use domain::faults::Faults;
use domain::topology::Group;
use domain::trust::Identity;
use domain::users::LoginThrottles;
use domain::{Context, DomainResult};
use micro_rpc::{Directory, ReplicaList, Upstream, UpstreamSettings};
use store::{Db, DbOptions, db_error};
use tokio::net::TcpListener;

use crate::admin::ServiceAdmin;

/// One context's part of a process: given the opened process, builds the context (its
/// in-process links to the others, its background tasks through [`Service::spawn`]) and
/// returns its internal routes. Each service crate exports one; the binary that hosts
/// groups holds the table of all of them, glue at the top.
pub type Mount = fn(&mut Service) -> anyhow::Result<Routes>;

/// A context's internal routes, as its mount returns them.
pub type Routes = axum::Router;

/// Serves `context` alone, a group of one: what each service's own binary (and container)
/// runs.
pub async fn serve_alone(
    context: Context,
    mount: Mount,
    settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve(
        context.into(),
        &[(context, mount)],
        settings,
        listener,
        shutdown,
    )
    .await
}

/// Serves `group` on `listener` until `shutdown` resolves: opens the group's database,
/// mounts every context of it with its mount from `mounts`, each context's internal routes
/// behind that context's identity, and serves them with the admin and ops routes.
pub async fn serve(
    group: Group,
    mounts: &[(Context, Mount)],
    settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Checked before the database is touched: a binary asked for a context it was not
    // built with refuses at once.
    let mut chosen = Vec::new();
    for context in group.contexts() {
        let mount = mounts
            .iter()
            .find(|(hosted, _)| hosted == context)
            .map(|(_, mount)| *mount)
            .with_context(|| {
                let known: Vec<&str> = mounts.iter().map(|(context, _)| context.as_str()).collect();
                format!(
                    "this binary cannot host {context}; it hosts {}",
                    known.join(", ")
                )
            })?;
        chosen.push((*context, mount));
    }
    let mut service = Service::open(group, settings).await?;
    let mut internal = axum::Router::new();
    for (context, mount) in chosen {
        let routes = mount(&mut service).with_context(|| format!("start {context}"))?;
        // Who calls and until when apply to the internal API only: admin and ops calls
        // come from the lab and operators, who send no service token and no deadline.
        // Each context's routes verify with that context's identity: a token for
        // `recommendations` does not open `catalog`'s routes, even in one process.
        internal = internal.merge(routes.route_layer(axum::middleware::from_fn_with_state(
            service.identity(context).clone(),
            micro_rpc::inbound,
        )));
    }
    let router = service.router(internal);
    service.serve(router, listener, shutdown).await
}

/// An opened service process: its group's database migrated (and seeded when asked), its
/// fault registry, its contexts' identities.
pub struct Service {
    pub group: Group,
    pub settings: Settings,
    pub db: Db,
    pub faults: Faults,
    /// This process's registry: its server's series and its upstream clients' hop series.
    pub metrics: Metrics,
    /// Where the contexts this service calls are; changed by `PUT /admin/upstreams`.
    pub directory: Directory,
    /// Who each hosted context is: signs its calls, verifies its callers.
    identities: BTreeMap<Context, Arc<Identity>>,
    admin_token: String,
    /// Opens `/metrics` only (`api::Settings::metrics_token`).
    metrics_token: String,
    /// Set once the process was told to stop: `/ready` then answers 503.
    stopping: api::server::Stopping,
    /// The `users` service's failed-login counts, which its admin reset forgets.
    login_throttles: Option<LoginThrottles>,
    /// The remote contexts this process's contexts call: `/ready` requires them.
    required: Vec<Upstream>,
    /// The contexts' background loops, stopped before the database closes.
    tasks: Vec<AbortOnDrop>,
}

/// Aborts a background task when the owner goes away, however it goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Service {
    /// Opens the process of `group` (a [`Context`] is a group of one).
    pub async fn open(group: impl Into<Group>, mut settings: Settings) -> anyhow::Result<Service> {
        let group = group.into();
        let name = group.name();
        let admin_token = settings.admin_token_or_new(&name);
        let metrics_token = settings.metrics_token_or_new(&name);
        let identities = keys::identities(&settings, &group)?;
        let options = DbOptions {
            max_connections: settings.db_max_connections,
            acquire_timeout: Duration::from_millis(settings.db_acquire_timeout_ms),
        };
        let db = Db::connect(&settings.db, &options)
            .await
            .with_context(|| format!("open the {name} database"))?;
        db.migrate(group.contexts())
            .await
            .with_context(|| format!("run the {name} migrations"))?;
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
            group,
            db,
            faults: Faults::new(),
            metrics,
            directory: directory(&settings),
            identities,
            admin_token,
            metrics_token,
            settings,
            stopping: api::server::Stopping::default(),
            login_throttles: None,
            required: Vec::new(),
            tasks: Vec::new(),
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
                .map_err(|error| anyhow::anyhow!("seed {name}: {error}"))?;
        }
        Ok(service)
    }

    /// The identity of a hosted context.
    pub fn identity(&self, context: Context) -> &Arc<Identity> {
        self.identities
            .get(&context)
            .expect("a process has the identity of every context it hosts: checked at open")
    }

    /// The client `caller` uses to call `callee`, from `settings.upstreams`, signing as
    /// `caller` and reporting its hops into this process's `/metrics`.
    pub fn upstream(&self, caller: Context, callee: Context) -> anyhow::Result<Upstream> {
        upstream(
            &self.settings,
            callee,
            &self.directory,
            &self.metrics.hops(),
            self.identity(caller),
        )
    }

    /// Runs `task` in the background until the process stops serving; it is stopped before
    /// the database closes, so it never finds the pools closing under it.
    pub fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(AbortOnDrop(tokio::spawn(task)));
    }

    fn admin(&self) -> ServiceAdmin {
        ServiceAdmin {
            name: self.group.name(),
            contexts: self.group.contexts().to_vec(),
            db: self.db.clone(),
            login_throttles: self.login_throttles.clone(),
        }
    }

    /// The `users` service's failed-login counts: its admin reset forgets them with the
    /// accounts they counted.
    pub fn forget_on_reset(&mut self, login_throttles: LoginThrottles) {
        self.login_throttles = Some(login_throttles);
    }

    /// Internal routes (already behind their contexts' `micro_rpc::inbound`) + admin + ops,
    /// with the common layers. `/ready` checks the database and every remote context the
    /// hosted contexts call ([`links`]).
    pub fn router(&self, internal: axum::Router) -> axum::Router {
        let metrics = self.metrics.clone();
        let readiness = ServiceReadiness {
            db: self.db.clone(),
            required: self.required.clone(),
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
        let router = internal
            .merge(api::admin::router(admin))
            .merge(upstreams)
            .merge(api::ops::router(ops));
        api::server::finish(router, &metrics, self.settings.body_limit_bytes)
    }

    /// Serves `router` until `shutdown`, then stops the background tasks and closes the
    /// database.
    pub async fn serve(
        mut self,
        router: axum::Router,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = api::server::Limits::of(&self.settings);
        let delay = Duration::from_millis(self.settings.shutdown_delay_ms);
        let shutdown = self.stopping.after(shutdown, delay);
        let address = listener.local_addr()?;
        // Printed once the service is open, so whoever reads this line can start polling.
        let name = self.group.name();
        println!("shoplab {name} listening on http://{address}");
        tracing::info!(service = %name, %address, "service ready to serve");
        let served = api::server::serve(listener, router, shutdown, limits).await;
        self.tasks.clear();
        self.db.close().await;
        served
    }
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

/// Starts the process hosting `group` from command-line flags, each context with its mount
/// from `mounts`, and serves until SIGTERM/SIGINT; prints the address it listens on. What
/// every service binary runs (a context's own, `micro-host`'s any group).
///
/// Not generic, so the server it drives (hyper, axum, every layer) is compiled once, here:
/// a generic entry point is compiled again in every binary that calls it, which cost each
/// of the eight service binaries of a static release build about two minutes of a 2-core
/// machine (measured: `micro-host` alone, 142 s).
pub async fn run_group(
    group: Group,
    mounts: &[(Context, Mount)],
    args: &api::cli::ServeArgs,
) -> anyhow::Result<()> {
    let name = group.name();
    run(name, args, |settings, listener, shutdown| {
        serve(group, mounts, settings, listener, shutdown)
    })
    .await
}

/// Starts a service process (`name`: its context or group) from command-line flags and
/// serves until SIGTERM/SIGINT; prints the address it listens on (the supervisor reads that
/// line).
async fn run<F, Fut>(
    name: impl std::fmt::Display,
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
        .with_context(|| format!("bind {name} on {address}"))?;
    serve(settings, listener, Box::pin(api::server::shutdown_signal())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_group_with_a_context_the_binary_cannot_mount_is_refused_before_anything_opens() {
        fn catalog(_: &mut Service) -> anyhow::Result<Routes> {
            Ok(Routes::new())
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let group = Group::parse("catalog+cart").expect("a group");
        // No keys and no database in these settings: opening anything would fail otherwise.
        let refused = serve(
            group,
            &[(Context::Catalog, catalog)],
            Settings::default(),
            listener,
            std::future::pending(),
        )
        .await
        .expect_err("cart has no mount");
        assert_eq!(
            refused.to_string(),
            "this binary cannot host cart; it hosts catalog"
        );
    }

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

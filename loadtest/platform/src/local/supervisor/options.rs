//! How to start a deployment: the executable, ports, databases, seed, replicas, secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use domain::Context;
use domain::trust::Keyring;

use super::{Build, Database, RestartPolicy};
use crate::cgroup::ProcessLimits;

/// How to start a deployment.
#[derive(Clone, Debug)]
pub struct Options {
    pub build: Build,
    /// The `shoplab` executable whose hidden `service` subcommand runs one process
    /// (`std::env::current_exe()` for the command itself; tests pass the built binary).
    pub program: PathBuf,
    /// The gateway's public port (0 = any free port).
    pub port: u16,
    /// The gateway's admin port (0 = any free port).
    pub admin_port: u16,
    pub database: Database,
    /// Wipe and seed every service with this seed at start; `None` seeds with 42 only when
    /// the data is fresh, as the monolith does.
    pub seed: Option<u64>,
    /// Replicas per service (1 when absent; micro only). The gateway always runs once.
    pub replicas: BTreeMap<Context, usize>,
    /// Put a front door (a reverse proxy) on the public port, in front of the monolith or
    /// the gateway, so they can be replaced by a rolling deploy or scaled out.
    pub front_door: bool,
    /// Services whose callers reach every replica through a fault proxy (`shoplab
    /// fault-proxy`), so the link can be slowed, reset or cut (`Deployment::break_link`).
    /// Microservices only: the monolith's contexts have no network between them. Empty by
    /// default: a proxy is one more loopback hop, which only a fault experiment should pay.
    pub proxied: BTreeSet<Context>,
    /// The databases holding these contexts' data are reached through a fault proxy:
    /// microservices, each such service's database; the monolith, its one database as soon
    /// as the set is not empty. PostgreSQL only (SQLite is a file inside the process).
    pub proxied_databases: BTreeSet<Context>,
    /// How long a rolling deploy waits between moving the callers to the new process and
    /// stopping the old one (a load balancer's deregistration delay, a Kubernetes preStop
    /// pause). Requests the callers had already sent to the old process finish, and its
    /// idle keep-alive connections go out of use, before it closes them: without the pause
    /// a request written onto such a connection as the old process shuts down is lost
    /// (measured: about 1 in 700 requests of a rolling storm, `IncompleteMessage`).
    pub deregistration_delay: Duration,
    /// The one admin token of the whole deployment.
    pub admin_token: String,
    /// The one metrics token of the whole deployment: opens every process's `/metrics` and
    /// nothing else (generated here; `serve micro` takes `SHOPLAB_METRICS_TOKEN` instead).
    pub metrics_token: String,
    /// Users signs tokens and the gateway verifies them with this shared secret.
    pub token_secret: String,
    /// Every process's service key pair, generated for this deployment: each service and
    /// the gateway is given its own private key and every public key (`domain::trust`), so
    /// no process can sign a token in another's name.
    pub service_keys: Keyring,
    /// Per-process CPU and memory limits of the shop's processes (not the front door's).
    pub limits: ProcessLimits,
    /// More environment for every child (`SHOPLAB_*` settings).
    pub env: Vec<(String, String)>,
    /// Forward the children's output to this process's stderr, prefixed with their names.
    pub forward_logs: bool,
    /// How long a process may take to print its address, and then to answer `/ready`.
    pub start_deadline: Duration,
    /// How long a process may take to exit after SIGTERM before it is killed.
    pub stop_deadline: Duration,
    /// How [`super::Deployment::heal_until`] restarts a process that exited.
    pub restart_policy: RestartPolicy,
}

impl Options {
    pub fn new(
        build: Build,
        program: PathBuf,
        database: Database,
        admin_token: String,
        token_secret: String,
    ) -> Options {
        Options {
            build,
            program,
            port: 0,
            admin_port: 0,
            database,
            seed: None,
            replicas: BTreeMap::new(),
            proxied: BTreeSet::new(),
            proxied_databases: BTreeSet::new(),
            front_door: false,
            deregistration_delay: Duration::from_millis(250),
            admin_token,
            metrics_token: hex::encode(rand::random::<[u8; 16]>()),
            token_secret,
            service_keys: Keyring::generate(),
            limits: ProcessLimits::default(),
            env: Vec::new(),
            forward_logs: true,
            start_deadline: Duration::from_secs(60),
            stop_deadline: Duration::from_secs(10),
            restart_policy: RestartPolicy::default(),
        }
    }

    pub(crate) fn replicas_of(&self, context: Context) -> usize {
        self.replicas.get(&context).copied().unwrap_or(1).max(1)
    }
}

//! The deployment's fault proxies: put in front of the services and databases a run's fault
//! matrix names before the load starts (callers and services restarted on their ports, so
//! every window pays the same extra hop), switched through each proxy's control API, and
//! healed. The proxy itself is a sidecar ([`crate::sidecars::fault_proxy`]).

use std::collections::BTreeSet;

use anyhow::Context as _;
use domain::Context;

use super::{Component, Database, Deployment, poll_ready};
use crate::cgroup::ProcessLimits;
use crate::child::{Launch, Process};
use crate::sidecars::fault_proxy::{Link, NetworkFault};

/// One running fault proxy child.
pub(crate) struct FaultProxy {
    pub link: Link,
    /// `HOST:PORT` the callers connect to.
    pub address: String,
    admin_url: String,
    process: Process,
}

impl FaultProxy {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl Deployment {
    /// Switches `fault` on for `link`, replacing whatever fault it had; on every replica's
    /// proxy of a service.
    pub async fn break_link(&mut self, link: Link, fault: NetworkFault) -> anyhow::Result<()> {
        let toxics = fault.toxics();
        let proxies = self.proxies_of(link)?;
        for proxy in proxies {
            clear(&self.http, proxy).await?;
            for toxic in &toxics {
                let url = format!("{}/toxics", proxy.admin_url);
                let response = self.http.post(&url).json(toxic).send().await;
                expect_success(response, &url).await?;
            }
        }
        Ok(())
    }

    /// Lets everything through `link` again.
    pub async fn heal_link(&mut self, link: Link) -> anyhow::Result<()> {
        for proxy in self.proxies_of(link)? {
            clear(&self.http, proxy).await?;
        }
        Ok(())
    }

    /// The database of `component` goes down (`true`: every connection to it is closed at
    /// once, new ones too) or comes back (`false`). A reset rather than a cut: a database
    /// server that is down refuses and drops connections, and the services set no statement
    /// timeout, so a blackhole would hold queries already sent until the heal instead.
    pub async fn database_down(&mut self, component: Component, down: bool) -> anyhow::Result<()> {
        let link = Link::Database(component);
        if down {
            self.break_link(link, NetworkFault::Reset).await
        } else {
            self.heal_link(link).await
        }
    }

    /// Where the data is kept.
    pub fn database(&self) -> &Database {
        &self.options.database
    }

    /// The links that have a proxy, and so can be broken.
    pub fn proxied_links(&self) -> BTreeSet<Link> {
        self.proxies.iter().map(|proxy| proxy.link).collect()
    }

    /// The fault proxies' PIDs: their CPU belongs to the system under test.
    pub fn proxy_pids(&self) -> Vec<u32> {
        self.proxies.iter().map(FaultProxy::pid).collect()
    }

    /// Puts proxies in front of more services and databases of a running deployment, then
    /// restarts whoever must learn the new addresses (on the ports they had, keeping their
    /// data): the processes over a proxied database, orders and the gateway for a proxied
    /// service. Meant for before the load starts; links already proxied are left alone.
    pub async fn insert_proxies(
        &mut self,
        services: &BTreeSet<Context>,
        databases: &BTreeSet<Context>,
    ) -> anyhow::Result<()> {
        let mut restart: Vec<(Component, usize)> = Vec::new();
        let new_databases: BTreeSet<Context> = databases
            .difference(&self.options.proxied_databases)
            .copied()
            .collect();
        if !new_databases.is_empty() {
            self.options.proxied_databases.extend(&new_databases);
            let before = self.proxies.len();
            self.start_database_proxies().await?;
            for proxy in &self.proxies[before..] {
                if let Link::Database(component) = proxy.link {
                    restart.extend(self.replicas_of(component));
                }
            }
        }
        let new_services: BTreeSet<Context> = services
            .difference(&self.options.proxied)
            .copied()
            .collect();
        if self.options.build == super::Build::Micro && !new_services.is_empty() {
            self.options.proxied.extend(&new_services);
            for context in &new_services {
                self.start_service_proxies(*context).await?;
            }
            if new_services
                .iter()
                .any(|context| super::ORDERS_UPSTREAMS.contains(context))
            {
                restart.extend(self.replicas_of(Component::Service(Context::Orders)));
            }
            restart.extend(self.replicas_of(Component::Gateway));
        }
        // The callees first, so a restarted caller finds them ready.
        restart.sort_by_key(|(component, _)| std::cmp::Reverse(component.stop_tier()));
        restart.dedup();
        // A restart works its flags out afresh, so it picks the proxies up.
        for (component, replica) in restart {
            self.restart(component, replica).await?;
        }
        Ok(())
    }

    /// Starts a proxy for each database `options.proxied_databases` asks for that has none
    /// yet (PostgreSQL only: SQLite is a file inside the process).
    pub(super) async fn start_database_proxies(&mut self) -> anyhow::Result<()> {
        if self.options.proxied_databases.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            self.options.database.is_postgres(),
            "a database fault proxy needs PostgreSQL: SQLite is embedded in the process, \
             with no connection to break"
        );
        let components: Vec<Component> = match self.options.build {
            // Every context's data is in the monolith's one database.
            super::Build::Monolith => vec![Component::Monolith],
            super::Build::Micro => self
                .options
                .proxied_databases
                .iter()
                .map(|context| Component::Service(*context))
                .collect(),
        };
        for component in components {
            let link = Link::Database(component);
            if self.proxies.iter().any(|proxy| proxy.link == link) {
                continue;
            }
            let url = database_url_of(&self.options.database, component);
            let (_, server, _) = split_authority(&url)
                .with_context(|| format!("find the server in {}", super::redact(&url)))?;
            let name = format!("proxy:{component}-db");
            let proxy = self.spawn_proxy(link, name, &server).await?;
            self.proxies.push(proxy);
        }
        Ok(())
    }

    /// Starts a proxy in front of every replica of `context`'s service, if it has none yet.
    pub(super) async fn start_service_proxies(&mut self, context: Context) -> anyhow::Result<()> {
        let link = Link::Service(context);
        if self.proxies.iter().any(|proxy| proxy.link == link) {
            return Ok(());
        }
        let replicas: Vec<(usize, String)> = self
            .members
            .iter()
            .filter(|member| member.component == Component::Service(context))
            .map(|member| (member.replica, member.url.clone()))
            .collect();
        for (replica, url) in replicas {
            let upstream = url.trim_start_matches("http://").to_owned();
            let name = format!("proxy:{context}#{replica}");
            let proxy = self.spawn_proxy(link, name, &upstream).await?;
            self.proxies.push(proxy);
        }
        Ok(())
    }

    /// What callers put in `--upstream` for `context`: its proxies when it has them.
    pub(super) fn upstream_urls(&self, context: Context) -> Vec<String> {
        let link = Link::Service(context);
        let proxied: Vec<String> = self
            .proxies
            .iter()
            .filter(|proxy| proxy.link == link)
            .map(|proxy| format!("http://{}", proxy.address))
            .collect();
        if proxied.is_empty() {
            self.urls(context)
        } else {
            proxied
        }
    }

    /// The `--db` URL of `component`: through its proxy when it has one.
    pub(super) fn database_url(&self, component: Component) -> String {
        let url = database_url_of(&self.options.database, component);
        let proxy = self
            .proxies
            .iter()
            .find(|proxy| proxy.link == Link::Database(component));
        match (proxy, split_authority(&url)) {
            (Some(proxy), Some((before, _, after))) => format!("{before}{}{after}", proxy.address),
            _ => url,
        }
    }

    /// Stops every proxy (after the processes that used them).
    pub(super) async fn stop_proxies(&mut self) -> anyhow::Result<()> {
        for proxy in &mut self.proxies {
            proxy.process.request_stop()?;
        }
        let deadline = self.options.stop_deadline;
        let stopping = self
            .proxies
            .iter_mut()
            .map(|proxy| proxy.process.finish_stop(deadline));
        futures::future::try_join_all(stopping).await?;
        Ok(())
    }

    fn replicas_of(&self, component: Component) -> Vec<(Component, usize)> {
        self.members
            .iter()
            .filter(|member| member.component == component)
            .map(|member| (component, member.replica))
            .collect()
    }

    fn proxies_of(&self, link: Link) -> anyhow::Result<Vec<&FaultProxy>> {
        let proxies: Vec<&FaultProxy> = self
            .proxies
            .iter()
            .filter(|proxy| proxy.link == link)
            .collect();
        anyhow::ensure!(
            !proxies.is_empty(),
            "{link} has no fault proxy in this deployment (see Options::proxied)"
        );
        Ok(proxies)
    }

    async fn spawn_proxy(
        &self,
        link: Link,
        name: String,
        upstream: &str,
    ) -> anyhow::Result<FaultProxy> {
        let launch = Launch {
            label: name.clone(),
            program: self.options.program.clone(),
            args: vec![
                "fault-proxy".to_owned(),
                "--name".to_owned(),
                name.clone(),
                "--upstream".to_owned(),
                upstream.to_owned(),
            ],
            // The pinning settings among them: the proxy runs on the system's cores.
            env: self.options.env.clone(),
            forward_logs: self.options.forward_logs,
            // The lab's own part, not the shop's.
            limits: ProcessLimits::default(),
        };
        let deadline = self.options.start_deadline;
        let (mut process, addresses) = Process::spawn(&launch, 0, deadline).await?;
        let admin_url = addresses
            .admin_url
            .with_context(|| format!("{name} printed no control address"))?;
        // The proxy's own `/ready`: the database behind a database proxy speaks no HTTP.
        poll_ready(&self.http, &mut process, &admin_url, deadline)
            .await
            .with_context(|| format!("start {name}"))?;
        Ok(FaultProxy {
            link,
            address: addresses.url.trim_start_matches("http://").to_owned(),
            admin_url,
            process,
        })
    }
}

/// The `--db` URL `component` has without a proxy (the gateway has no database).
fn database_url_of(database: &Database, component: Component) -> String {
    match component {
        Component::Monolith => database.monolith_url(),
        Component::Service(context) => database.url(context),
        Component::Gateway | Component::FrontDoor => String::new(),
    }
}

async fn clear(http: &reqwest::Client, proxy: &FaultProxy) -> anyhow::Result<()> {
    let url = format!("{}/toxics", proxy.admin_url);
    expect_success(http.delete(&url).send().await, &url).await
}

async fn expect_success(
    response: reqwest::Result<reqwest::Response>,
    url: &str,
) -> anyhow::Result<()> {
    let response = response.with_context(|| format!("call {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {text}");
    Ok(())
}

/// `postgres://user:pw@HOST:PORT/db?x` -> (`postgres://user:pw@`, `HOST:PORT`, `/db?x`); the
/// port defaults to PostgreSQL's 5432.
fn split_authority(url: &str) -> Option<(String, String, String)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host = &authority[host_start..];
    if host.is_empty() {
        return None;
    }
    let server = if host
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    Some((
        url[..authority_start + host_start].to_owned(),
        server,
        rest[authority_end..].to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn the_database_server_is_found_in_a_postgres_url() {
        let split = |url| split_authority(url).expect("an authority");
        assert_eq!(
            split("postgres://postgres@127.0.0.1:5432/shoplab_orders"),
            (
                "postgres://postgres@".to_owned(),
                "127.0.0.1:5432".to_owned(),
                "/shoplab_orders".to_owned()
            )
        );
        assert_eq!(
            split("postgres://u:p@db/x?sslmode=disable"),
            (
                "postgres://u:p@".to_owned(),
                "db:5432".to_owned(),
                "/x?sslmode=disable".to_owned()
            )
        );
    }
}

//! The gateway's admin API: the same paths and shapes as every shop process's
//! (`api::admin`), answered by fanning out to the services.
//!
//! In the monolith one process owns all the data and the one fault registry. Here each
//! service owns its tables and the faults of its own process, so the gateway forwards:
//! `reset` goes to every replica of every service, `audit` merges what inventory, orders and
//! payments report, and a fault for context X is switched in X's processes.
//!
//! In a topology between the two builds one process hosts several contexts, and the
//! upstream map names its address under each of them. A call meant for every process
//! (reset, the fault list, healing) goes to each address once ([`processes`]): a process
//! resets all of its tables at once, and would otherwise report each of its faults once per
//! context it hosts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::admin::{Admin, Audit, ResetRequest, ResetSummary};
use domain::faults::{ActiveFault, FaultRequest, Faults};
use domain::{Context, DomainError, DomainResult, now_ms};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use api::ApiError;
use api::admin::{AdminState, Cleared, FaultList};
use api::error::ErrorBody;
use api::extract::ApiJson;
use micro_rpc::Directory;

/// Reset seeds whole databases (and hashes seeded users' passwords), which takes far longer
/// than any shop call; the admin port is not measured, so it waits generously.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The services behind the gateway, called on their admin routes with the deployment's
/// admin token (one token for the whole deployment).
#[derive(Clone)]
pub struct GatewayAdmin {
    /// The gateway's one directory, so a replica a rolling deploy brings in is reset,
    /// audited and faulted like the rest.
    services: Directory,
    http: reqwest::Client,
    token: Arc<str>,
}

impl GatewayAdmin {
    /// The services as `directory` knows them (the gateway's upstream map).
    pub fn new(directory: &Directory, token: String) -> anyhow::Result<GatewayAdmin> {
        let services = directory.clone();
        let http = reqwest::Client::builder()
            .timeout(ADMIN_CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
            .build()?;
        Ok(GatewayAdmin {
            services,
            http,
            token: Arc::from(token),
        })
    }

    /// `/admin/reset`, `/admin/audit`, `/admin/faults`, `/admin/upstreams`, all behind the
    /// admin token.
    pub fn router(self) -> Router {
        let token = self.token.clone();
        let directory = self.services.clone();
        // Reset and audit use `api::admin`'s own handlers over this `Admin`, so validation
        // and shapes cannot drift from the monolith's. The gateway runs no context, so the
        // in-process registry those handlers carry stays empty; fault routes forward instead.
        let state = AdminState {
            admin: Arc::new(self.clone()),
            faults: Faults::new(),
            token: token.clone(),
        };
        let data = Router::new()
            .route("/admin/reset", post(api::admin::reset))
            .route("/admin/audit", get(api::admin::audit))
            .with_state(state);
        let faults = Router::new()
            .route(
                "/admin/faults",
                post(inject_fault).get(list_faults).delete(clear_faults),
            )
            .with_state(self);
        data.merge(faults)
            .merge(micro_kit::upstreams_router(directory))
            .route_layer(middleware::from_fn_with_state(
                token,
                api::admin::require_token,
            ))
    }

    fn replicas(&self, context: Context) -> DomainResult<Vec<String>> {
        Some(self.services.replicas(context))
            .filter(|replicas| !replicas.is_empty())
            .ok_or_else(|| {
                DomainError::Invalid(format!("no {context} service behind this gateway"))
            })
    }

    /// One admin call to one replica; answers map back to domain errors as every hop's do.
    async fn call<T: DeserializeOwned>(
        &self,
        context: Context,
        replica: &str,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> DomainResult<T> {
        let mut request = self
            .http
            .request(method, format!("{replica}{path}"))
            .bearer_auth(&*self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let unavailable = |_| DomainError::Unavailable(format!("{context} did not answer"));
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unavailable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| {
                DomainError::Internal(format!("{context} admin answer does not parse: {error}"))
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.into_error(status),
            Err(_) => DomainError::Unavailable(format!("{context} answered {status}")),
        })
    }

    /// The first replica of `context` that answers; replicas share a database, so any one
    /// of them sees all of the context's data.
    async fn ask_one<T: DeserializeOwned>(&self, context: Context, path: &str) -> DomainResult<T> {
        let mut last_error = DomainError::Unavailable(format!("{context} has no replicas"));
        for replica in &self.replicas(context)? {
            match self
                .call(context, replica, Method::GET, path, None::<&()>)
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(error @ DomainError::Unavailable(_)) => last_error = error,
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// Every replica of every service; a replica that does not answer is left out of the
    /// answer (a dead process has no faults to list or clear), other errors are returned.
    async fn every_replica<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> DomainResult<Vec<T>> {
        let services = processes(self.services.all());
        let calls = services.iter().flat_map(|(context, replicas)| {
            let method = method.clone();
            replicas.iter().map(move |replica| {
                self.call::<T>(*context, replica, method.clone(), path, None::<&()>)
            })
        });
        let mut answers = Vec::new();
        for answer in futures::future::join_all(calls).await {
            match answer {
                Ok(answer) => answers.push(answer),
                Err(DomainError::Unavailable(message)) => {
                    tracing::warn!(%path, %message, "a replica did not answer an admin call; left out");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(answers)
    }
}

#[async_trait]
impl Admin for GatewayAdmin {
    /// Every service wipes and seeds its own tables from the same seed, so the contexts agree
    /// on ids as they do in the monolith. Replicas share their service's database; each is
    /// still told, in turn, so none keeps serving from state of the old seed.
    async fn reset(&self, request: &ResetRequest) -> DomainResult<ResetSummary> {
        let services = processes(self.services.all());
        let per_service = services.iter().map(|(context, replicas)| async move {
            let mut summary = None;
            for replica in replicas {
                let answer: ResetSummary = self
                    .call(
                        *context,
                        replica,
                        Method::POST,
                        "/admin/reset",
                        Some(request),
                    )
                    .await?;
                summary = Some(answer);
            }
            Ok::<_, DomainError>(summary)
        });
        let summaries = futures::future::try_join_all(per_service).await?;
        summaries
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| DomainError::Unavailable("no service behind this gateway".into()))
    }

    /// One snapshot assembled from the owners: stock and reservations from inventory, orders
    /// from orders, charges and refunds from payments. The three are read side by side, not
    /// atomically; the checker runs it after quiescence, when nothing moves.
    async fn audit(&self) -> DomainResult<Audit> {
        let taken_at_ms = now_ms();
        let (inventory, orders, payments) = tokio::try_join!(
            self.ask_one::<Audit>(Context::Inventory, "/admin/audit"),
            self.ask_one::<Audit>(Context::Orders, "/admin/audit"),
            self.ask_one::<Audit>(Context::Payments, "/admin/audit"),
        )?;
        Ok(Audit {
            taken_at_ms,
            stock: inventory.stock,
            reservations: inventory.reservations,
            orders: orders.orders,
            charges: payments.charges,
            refunds: payments.refunds,
        })
    }
}

/// Every process behind the gateway once: each replica address under the first context
/// that names it, contexts that name only addresses already listed left out.
fn processes(
    services: std::collections::BTreeMap<Context, Vec<String>>,
) -> Vec<(Context, Vec<String>)> {
    let mut seen = std::collections::BTreeSet::new();
    services
        .into_iter()
        .map(|(context, replicas)| {
            let new: Vec<String> = replicas
                .into_iter()
                .filter(|replica| seen.insert(replica.clone()))
                .collect();
            (context, new)
        })
        .filter(|(_, replicas)| !replicas.is_empty())
        .collect()
}

/// `POST /admin/faults`: validated here (an unknown context or kind is 422 without a hop),
/// then switched on in every replica of the target context's service. Answers with the
/// first replica's fault.
async fn inject_fault(
    State(admin): State<GatewayAdmin>,
    ApiJson(request): ApiJson<FaultRequest>,
) -> Result<(StatusCode, Json<ActiveFault>), ApiError> {
    let (context, _, _) = request.validate()?;
    let mut first = None;
    for replica in &admin.replicas(context)? {
        let fault: ActiveFault = admin
            .call(
                context,
                replica,
                Method::POST,
                "/admin/faults",
                Some(&request),
            )
            .await?;
        first.get_or_insert(fault);
    }
    let fault =
        first.ok_or_else(|| DomainError::Unavailable(format!("{context} has no replicas")))?;
    Ok((StatusCode::CREATED, Json(fault)))
}

/// `GET /admin/faults`: the faults switched on in every service process that answers.
async fn list_faults(State(admin): State<GatewayAdmin>) -> Result<Json<FaultList>, ApiError> {
    let lists: Vec<FaultList> = admin.every_replica(Method::GET, "/admin/faults").await?;
    Ok(Json(FaultList {
        items: lists.into_iter().flat_map(|list| list.items).collect(),
    }))
}

/// `DELETE /admin/faults`: heals every service process that answers.
async fn clear_faults(State(admin): State<GatewayAdmin>) -> Result<Json<Cleared>, ApiError> {
    let cleared: Vec<Cleared> = admin.every_replica(Method::DELETE, "/admin/faults").await?;
    Ok(Json(Cleared {
        cleared: cleared.iter().map(|answer| answer.cleared).sum(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_hosting_several_contexts_is_called_once() {
        let group = "http://127.0.0.1:4101".to_owned();
        let services = std::collections::BTreeMap::from([
            (Context::Catalog, vec![group.clone()]),
            (Context::Inventory, vec!["http://127.0.0.1:4102".to_owned()]),
            (
                Context::Recommendations,
                vec![group.clone(), "http://127.0.0.1:4103".to_owned()],
            ),
        ]);
        assert_eq!(
            processes(services),
            [
                (Context::Catalog, vec![group]),
                (Context::Inventory, vec!["http://127.0.0.1:4102".to_owned()]),
                (
                    Context::Recommendations,
                    vec!["http://127.0.0.1:4103".to_owned()]
                ),
            ]
        );
    }
}

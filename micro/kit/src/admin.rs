//! Reset and audit of a process's own tables: those of the contexts it hosts, in one
//! transaction, as the monolith resets all of its own.

use async_trait::async_trait;
use domain::admin::{Admin, Audit, ResetRequest, ResetSummary};
use domain::users::LoginThrottles;
use domain::{Context, DomainResult, now_ms, seed};
use store::{Db, db_error};

pub(crate) struct ServiceAdmin {
    pub(crate) name: String,
    pub(crate) contexts: Vec<Context>,
    pub(crate) db: Db,
    pub(crate) login_throttles: Option<LoginThrottles>,
}

#[async_trait]
impl Admin for ServiceAdmin {
    async fn reset(&self, request: &ResetRequest) -> DomainResult<ResetSummary> {
        let data = seed::generate(request);
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        for context in &self.contexts {
            store::admin::reset_in(&self.db, &mut transaction, *context, &data).await?;
        }
        transaction.commit().await.map_err(db_error)?;
        if let Some(login_throttles) = &self.login_throttles {
            login_throttles.clear();
        }
        tracing::info!(service = %self.name, seed = request.seed, "service reset");
        Ok(ResetSummary::new(request, data.user_password))
    }

    async fn audit(&self) -> DomainResult<Audit> {
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        let mut audit = Audit {
            taken_at_ms: now_ms(),
            ..Audit::default()
        };
        for context in &self.contexts {
            store::admin::audit_in(&mut connection, *context, &mut audit).await?;
        }
        Ok(audit)
    }
}

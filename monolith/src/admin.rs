//! Reset and audit over the monolith's one database: every context's part, one transaction.

use async_trait::async_trait;
use domain::admin::{Admin, Audit, ResetRequest, ResetSummary};
use domain::users::LoginThrottles;
use domain::{Context, DomainResult, now_ms, seed};
use store::{Db, db_error};

pub struct MonolithAdmin {
    db: Db,
    /// The failed-login counts, forgotten with the accounts they counted.
    login_throttles: LoginThrottles,
}

impl MonolithAdmin {
    pub fn new(db: Db, login_throttles: LoginThrottles) -> MonolithAdmin {
        MonolithAdmin {
            db,
            login_throttles,
        }
    }
}

#[async_trait]
impl Admin for MonolithAdmin {
    async fn reset(&self, request: &ResetRequest) -> DomainResult<ResetSummary> {
        let data = seed::generate(request);
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        for context in Context::ALL {
            store::admin::reset_in(&self.db, &mut transaction, context, &data).await?;
        }
        transaction.commit().await.map_err(db_error)?;
        self.login_throttles.clear();
        tracing::info!(
            seed = request.seed,
            products = request.products,
            users = request.users,
            "shop reset"
        );
        Ok(ResetSummary::new(request, data.user_password))
    }

    async fn audit(&self) -> DomainResult<Audit> {
        // One transaction, so the snapshot is consistent across contexts.
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let mut audit = Audit {
            taken_at_ms: now_ms(),
            ..Audit::default()
        };
        for context in Context::ALL {
            store::admin::audit_in(&mut transaction, context, &mut audit).await?;
        }
        transaction.commit().await.map_err(db_error)?;
        Ok(audit)
    }
}

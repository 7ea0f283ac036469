//! Reset and audit over the monolith's one database: every context's part, one transaction.

use async_trait::async_trait;
use domain::admin::{Admin, Audit, ResetRequest, ResetSummary};
use domain::{DomainResult, now_ms, seed};
use store::{Db, db_error};

pub struct MonolithAdmin {
    db: Db,
}

impl MonolithAdmin {
    pub fn new(db: Db) -> MonolithAdmin {
        MonolithAdmin { db }
    }
}

#[async_trait]
impl Admin for MonolithAdmin {
    async fn reset(&self, request: &ResetRequest) -> DomainResult<ResetSummary> {
        let data = seed::generate(request);
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        for tables in [
            &store::catalog::TABLES[..],
            &store::inventory::TABLES[..],
            &store::cart::TABLES[..],
            &store::orders::TABLES[..],
            &store::payments::TABLES[..],
            &store::users::TABLES[..],
            &store::recommendations::TABLES[..],
        ] {
            self.db
                .wipe(&mut transaction, tables)
                .await
                .map_err(db_error)?;
        }
        let product_ids: Vec<i64> = data.products.iter().map(|product| product.id).collect();
        store::catalog::seed_in(&mut transaction, &data.products)
            .await
            .map_err(db_error)?;
        store::inventory::seed_in(&mut transaction, &product_ids, data.stock)
            .await
            .map_err(db_error)?;
        store::recommendations::seed_in(&mut transaction, &data.recommendations)
            .await
            .map_err(db_error)?;
        store::users::seed_in(&mut transaction, &data.users, &data.user_password).await?;
        transaction.commit().await.map_err(db_error)?;
        tracing::info!(
            seed = request.seed,
            products = request.products,
            users = request.users,
            "shop reset"
        );
        Ok(ResetSummary {
            products: request.products,
            stock: request.stock,
            users: request.users,
            seed: request.seed,
            user_password: data.user_password,
        })
    }

    async fn audit(&self) -> DomainResult<Audit> {
        // One read transaction, so the snapshot is consistent across contexts.
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let taken_at_ms = now_ms();
        let (stock, reservations) = store::inventory::audit_in(&mut transaction).await?;
        let orders = store::orders::audit_in(&mut transaction).await?;
        let (charges, refunds) = store::payments::audit_in(&mut transaction).await?;
        transaction.commit().await.map_err(db_error)?;
        Ok(Audit {
            taken_at_ms,
            stock,
            reservations,
            orders,
            charges,
            refunds,
        })
    }
}

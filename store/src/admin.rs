//! Reset and audit, per context: each context wipes and seeds only its own tables and reports
//! only its own part of the audit. The monolith runs every context's part in one transaction;
//! a service runs its own.

use domain::admin::Audit;
use domain::seed::SeedData;
use domain::{Context, DomainResult};
use sqlx::AnyConnection;

use crate::{Db, db_error};

/// The tables a context owns.
pub fn tables(context: Context) -> &'static [&'static str] {
    match context {
        Context::Catalog => &crate::catalog::TABLES,
        Context::Inventory => &crate::inventory::TABLES,
        Context::Cart => &crate::cart::TABLES,
        Context::Orders => &crate::orders::TABLES,
        Context::Payments => &crate::payments::TABLES,
        Context::Users => &crate::users::TABLES,
        Context::Recommendations => &crate::recommendations::TABLES,
    }
}

/// Wipes the context's tables and seeds its part of `data`.
pub async fn reset_in(
    db: &Db,
    connection: &mut AnyConnection,
    context: Context,
    data: &SeedData,
) -> DomainResult<()> {
    db.wipe(connection, tables(context))
        .await
        .map_err(db_error)?;
    match context {
        Context::Catalog => crate::catalog::seed_in(connection, &data.products)
            .await
            .map_err(db_error),
        Context::Inventory => {
            let product_ids: Vec<i64> = data.products.iter().map(|product| product.id).collect();
            crate::inventory::seed_in(connection, &product_ids, data.stock)
                .await
                .map_err(db_error)
        }
        Context::Recommendations => {
            crate::recommendations::seed_in(connection, &data.recommendations)
                .await
                .map_err(db_error)
        }
        Context::Users => crate::users::seed_in(connection, &data.users, &data.user_password).await,
        // Carts, orders and payments start empty.
        Context::Cart | Context::Orders | Context::Payments => Ok(()),
    }
}

/// Adds the context's part of the audit snapshot (contexts without audited state add nothing).
pub async fn audit_in(
    connection: &mut AnyConnection,
    context: Context,
    audit: &mut Audit,
) -> DomainResult<()> {
    match context {
        Context::Inventory => {
            (audit.stock, audit.reservations) = crate::inventory::audit_in(connection).await?;
        }
        Context::Orders => audit.orders = crate::orders::audit_in(connection).await?,
        Context::Payments => {
            (audit.charges, audit.refunds) = crate::payments::audit_in(connection).await?
        }
        Context::Catalog | Context::Cart | Context::Users | Context::Recommendations => {}
    }
    Ok(())
}

//! `cart` tables: `cart_items`.

use async_trait::async_trait;
use domain::cart::{Cart, CartLine, MAX_CART_LINES};
use domain::catalog::ProductId;
use domain::faults::Faults;
use domain::users::UserId;
use domain::{Context, DomainError, DomainResult, now_ms};
use sqlx::AnyConnection;

use crate::Db;
use crate::db::db_error;

pub const TABLES: [&str; 1] = ["cart_items"];

pub struct SqlCart {
    db: Db,
    faults: Faults,
}

impl SqlCart {
    pub fn new(db: Db, faults: Faults) -> SqlCart {
        SqlCart { db, faults }
    }
}

#[async_trait]
impl Cart for SqlCart {
    async fn lines(&self, user_id: UserId) -> DomainResult<Vec<CartLine>> {
        self.faults.enter(Context::Cart).await?;
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        lines_in(&mut connection, user_id).await
    }

    async fn set_quantity(
        &self,
        user_id: UserId,
        product_id: ProductId,
        quantity: i64,
    ) -> DomainResult<()> {
        self.faults.enter(Context::Cart).await?;
        let mut transaction = self.db.begin_write().await.map_err(db_error)?;
        let lines = lines_in(&mut transaction, user_id).await?;
        let is_new = !lines.iter().any(|line| line.product_id == product_id);
        if is_new && lines.len() >= MAX_CART_LINES {
            return Err(DomainError::Conflict(format!(
                "a cart holds at most {MAX_CART_LINES} different products"
            )));
        }
        sqlx::query(
            "INSERT INTO cart_items (user_id, product_id, quantity, updated_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, product_id)
             DO UPDATE SET quantity = excluded.quantity, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(user_id)
        .bind(product_id)
        .bind(quantity)
        .bind(now_ms())
        .execute(&mut *transaction)
        .await
        .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn remove(&self, user_id: UserId, product_id: ProductId) -> DomainResult<()> {
        self.faults.enter(Context::Cart).await?;
        let removed = sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2")
            .bind(user_id)
            .bind(product_id)
            .execute(self.db.writer())
            .await
            .map_err(db_error)?;
        if removed.rows_affected() == 0 {
            return Err(DomainError::NotFound(format!(
                "product {product_id} is not in the cart"
            )));
        }
        Ok(())
    }

    async fn clear(&self, user_id: UserId) -> DomainResult<()> {
        self.faults.enter(Context::Cart).await?;
        let mut connection = self.db.writer().acquire().await.map_err(db_error)?;
        clear_in(&mut connection, user_id).await
    }
}

pub async fn lines_in(
    connection: &mut AnyConnection,
    user_id: UserId,
) -> DomainResult<Vec<CartLine>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY product_id",
    )
    .bind(user_id)
    .fetch_all(&mut *connection)
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(product_id, quantity)| CartLine {
            product_id,
            quantity,
        })
        .collect())
}

pub async fn clear_in(connection: &mut AnyConnection, user_id: UserId) -> DomainResult<()> {
    sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *connection)
        .await
        .map_err(db_error)?;
    Ok(())
}

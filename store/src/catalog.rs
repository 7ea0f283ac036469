//! `catalog` tables: `products`.

use async_trait::async_trait;
use domain::catalog::{Catalog, Product, ProductFilter, ProductId, ProductPage};
use domain::faults::Faults;
use domain::{Context, DomainError, DomainResult};
use sqlx::AnyConnection;

use crate::Db;
use crate::db::{SEED_BATCH_ROWS, db_error, placeholders, row_placeholders};

pub const TABLES: [&str; 1] = ["products"];

type ProductRow = (i64, String, String, String, String, i64);

const PRODUCT_COLUMNS: &str = "id, sku, name, description, category, price_cents";

pub struct SqlCatalog {
    db: Db,
    faults: Faults,
}

impl SqlCatalog {
    pub fn new(db: Db, faults: Faults) -> SqlCatalog {
        SqlCatalog { db, faults }
    }
}

#[async_trait]
impl Catalog for SqlCatalog {
    async fn list(&self, filter: &ProductFilter) -> DomainResult<ProductPage> {
        self.faults.enter(Context::Catalog).await?;
        let pattern = filter.q.as_deref().map(like_pattern);
        let category = filter.category.clone();
        let limit = i64::from(filter.per_page);
        let offset = i64::from(filter.page - 1) * limit;
        // The CASTs give PostgreSQL a type for parameters that may be NULL.
        let rows: Vec<ProductRow> = sqlx::query_as(
            "SELECT id, sku, name, description, category, price_cents FROM products
             WHERE (CAST($1 AS TEXT) IS NULL OR LOWER(name) LIKE $1 ESCAPE '\\')
               AND (CAST($2 AS TEXT) IS NULL OR category = $2)
             ORDER BY id LIMIT $3 OFFSET $4",
        )
        .bind(pattern.clone())
        .bind(category.clone())
        .bind(limit)
        .bind(offset)
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        let (total,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM products
             WHERE (CAST($1 AS TEXT) IS NULL OR LOWER(name) LIKE $1 ESCAPE '\\')
               AND (CAST($2 AS TEXT) IS NULL OR category = $2)",
        )
        .bind(pattern)
        .bind(category)
        .fetch_one(self.db.reader())
        .await
        .map_err(db_error)?;
        Ok(ProductPage {
            items: rows.into_iter().map(product).collect(),
            page: filter.page,
            per_page: filter.per_page,
            total,
        })
    }

    async fn get(&self, id: ProductId) -> DomainResult<Product> {
        self.faults.enter(Context::Catalog).await?;
        let row: Option<ProductRow> = sqlx::query_as(
            "SELECT id, sku, name, description, category, price_cents FROM products WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.reader())
        .await
        .map_err(db_error)?;
        row.map(product)
            .ok_or_else(|| DomainError::NotFound(format!("product {id} not found")))
    }

    async fn get_many(&self, ids: &[ProductId]) -> DomainResult<Vec<Product>> {
        self.faults.enter(Context::Catalog).await?;
        let mut connection = self.db.reader().acquire().await.map_err(db_error)?;
        get_many_in(&mut connection, ids).await.map_err(db_error)
    }
}

/// The products among `ids` that exist, ordered by id.
pub async fn get_many_in(
    connection: &mut AnyConnection,
    ids: &[ProductId],
) -> Result<Vec<Product>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN {} ORDER BY id",
        placeholders(1, ids.len())
    );
    // Only numbered placeholders are spliced in; the ids are bound.
    let mut query = sqlx::query_as::<_, ProductRow>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&mut *connection).await?;
    Ok(rows.into_iter().map(product).collect())
}

pub async fn seed_in(
    connection: &mut AnyConnection,
    products: &[Product],
) -> Result<(), sqlx::Error> {
    for chunk in products.chunks(SEED_BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES {}",
            row_placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for product in chunk {
            query = query
                .bind(product.id)
                .bind(product.sku.clone())
                .bind(product.name.clone())
                .bind(product.description.clone())
                .bind(product.category.clone())
                .bind(product.price_cents);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

fn product((id, sku, name, description, category, price_cents): ProductRow) -> Product {
    Product {
        id,
        sku,
        name,
        description,
        category,
        price_cents,
    }
}

/// A case-insensitive substring pattern in which `%`, `_` and `\` from the user are literal.
fn like_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Lamp"), "%lamp%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}

//! `recommendations` tables: `recommendations` (a read model built when the shop is seeded).

use async_trait::async_trait;
use domain::catalog::ProductId;
use domain::faults::Faults;
use domain::recommendations::{RECOMMENDATIONS_PER_PRODUCT, Recommendation, Recommendations};
use domain::{Context, DomainResult};
use sqlx::AnyConnection;

use crate::Db;
use crate::db::{SEED_BATCH_ROWS, db_error, row_placeholders};

pub const TABLES: [&str; 1] = ["recommendations"];

pub struct SqlRecommendations {
    db: Db,
    faults: Faults,
}

impl SqlRecommendations {
    pub fn new(db: Db, faults: Faults) -> SqlRecommendations {
        SqlRecommendations { db, faults }
    }
}

#[async_trait]
impl Recommendations for SqlRecommendations {
    async fn for_product(&self, product_id: ProductId) -> DomainResult<Vec<Recommendation>> {
        self.faults.enter(Context::Recommendations).await?;
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT recommended_id, name, score FROM recommendations WHERE product_id = $1
             ORDER BY score DESC, recommended_id LIMIT $2",
        )
        .bind(product_id)
        .bind(RECOMMENDATIONS_PER_PRODUCT as i64)
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(product_id, name, score)| Recommendation {
                product_id,
                name,
                score,
            })
            .collect())
    }
}

pub async fn seed_in(
    connection: &mut AnyConnection,
    pairs: &[(ProductId, Recommendation)],
) -> Result<(), sqlx::Error> {
    for chunk in pairs.chunks(SEED_BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO recommendations (product_id, recommended_id, name, score) VALUES {}",
            row_placeholders(chunk.len(), 4)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (product_id, recommendation) in chunk {
            query = query
                .bind(*product_id)
                .bind(recommendation.product_id)
                .bind(recommendation.name.clone())
                .bind(recommendation.score);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

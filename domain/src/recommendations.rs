//! `recommendations`: "customers also bought" for a product.
//!
//! Deliberately non-critical: when it fails, product pages lose this list and nothing else.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::DomainResult;
use crate::catalog::ProductId;

/// How many recommendations a product page shows.
pub const RECOMMENDATIONS_PER_PRODUCT: usize = 4;

/// The context keeps its own copy of the names it shows (a read model built when the
/// shop is seeded), so a product page never needs a second catalog call for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    pub product_id: ProductId,
    pub name: String,
    pub score: i64,
}

#[async_trait]
pub trait Recommendations: Send + Sync {
    /// Best first; empty for an unknown product.
    async fn for_product(&self, product_id: ProductId) -> DomainResult<Vec<Recommendation>>;
}

//! `catalog`: products, listing with paging, category filter and text search.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DomainError, DomainResult};

pub type ProductId = i64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
}

/// `GET /api/products?q=&category=&page=&per_page=`, as received (all optional).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct ProductQuery {
    /// Case-insensitive text search in the product name.
    pub q: Option<String>,
    pub category: Option<String>,
    /// 1-based page number.
    pub page: Option<u32>,
    /// Items per page, 1..=100 (default 20).
    pub per_page: Option<u32>,
}

/// A validated listing request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductFilter {
    pub q: Option<String>,
    pub category: Option<String>,
    pub page: u32,
    pub per_page: u32,
}

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;
pub const MAX_QUERY_CHARS: usize = 100;

impl ProductQuery {
    pub fn validate(self) -> DomainResult<ProductFilter> {
        let page = self.page.unwrap_or(1);
        if page == 0 || page > 1_000_000 {
            return Err(DomainError::Invalid(
                "page must be between 1 and 1000000".into(),
            ));
        }
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(DomainError::Invalid(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        let q = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if q.as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            return Err(DomainError::Invalid(format!(
                "q must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        // PostgreSQL cannot store or compare a NUL in text, and no product name holds a
        // control character, so a search with one is refused rather than half-answered.
        if q.as_ref().is_some_and(|q| q.chars().any(char::is_control)) {
            return Err(DomainError::Invalid(
                "q must not contain control characters".into(),
            ));
        }
        let category = self.category.filter(|category| !category.is_empty());
        if category
            .as_ref()
            .is_some_and(|category| category.chars().any(char::is_control))
        {
            return Err(DomainError::Invalid(
                "category must not contain control characters".into(),
            ));
        }
        if category
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_QUERY_CHARS)
        {
            return Err(DomainError::Invalid(format!(
                "category must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        Ok(ProductFilter {
            q,
            category,
            page,
            per_page,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub page: u32,
    pub per_page: u32,
    pub total: i64,
}

#[async_trait]
pub trait Catalog: Send + Sync {
    async fn list(&self, filter: &ProductFilter) -> DomainResult<ProductPage>;
    /// `NotFound` when the product does not exist.
    async fn get(&self, id: ProductId) -> DomainResult<Product>;
    /// The products that exist among `ids`, in no particular order.
    async fn get_many(&self, ids: &[ProductId]) -> DomainResult<Vec<Product>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_defaults_to_the_first_page_of_twenty() {
        let filter = ProductQuery::default().validate().unwrap();
        assert_eq!((filter.page, filter.per_page), (1, 20));
    }

    #[test]
    fn zero_or_oversized_pages_are_invalid() {
        for (page, per_page) in [(Some(0), None), (None, Some(0)), (None, Some(101))] {
            let query = ProductQuery {
                page,
                per_page,
                ..Default::default()
            };
            assert!(matches!(query.validate(), Err(DomainError::Invalid(_))));
        }
    }

    #[test]
    fn control_characters_in_a_search_are_invalid() {
        for q in ["nul\u{0}", "bell\u{7}"] {
            let query = ProductQuery {
                q: Some(q.into()),
                ..Default::default()
            };
            assert!(
                matches!(query.validate(), Err(DomainError::Invalid(_))),
                "{q:?}"
            );
        }
    }

    #[test]
    fn a_blank_search_means_no_search() {
        let query = ProductQuery {
            q: Some("   ".into()),
            ..Default::default()
        };
        assert_eq!(query.validate().unwrap().q, None);
    }
}

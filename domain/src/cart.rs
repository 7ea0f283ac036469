//! `cart`: one cart per user; add, change quantity, remove.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::ProductId;
use crate::users::UserId;
use crate::{DomainError, DomainResult};

pub const MIN_QUANTITY: i64 = 1;
pub const MAX_QUANTITY: i64 = 100;
/// Distinct products one cart may hold; keeps a checkout bounded.
pub const MAX_CART_LINES: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartLine {
    pub product_id: ProductId,
    pub quantity: i64,
}

/// `PUT /api/cart/items/{product_id}` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    pub quantity: i64,
}

impl SetQuantity {
    pub fn validate(&self) -> DomainResult<i64> {
        if (MIN_QUANTITY..=MAX_QUANTITY).contains(&self.quantity) {
            Ok(self.quantity)
        } else {
            Err(DomainError::Invalid(format!(
                "quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}"
            )))
        }
    }
}

/// The cart as the public API shows it: lines priced at the catalog's current price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartView {
    pub items: Vec<CartItemView>,
    pub total_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartItemView {
    pub product_id: ProductId,
    pub quantity: i64,
    /// Unit price.
    pub price_cents: i64,
    pub name: String,
}

#[async_trait]
pub trait Cart: Send + Sync {
    /// The user's lines, ordered by product id; empty when there is no cart.
    async fn lines(&self, user_id: UserId) -> DomainResult<Vec<CartLine>>;
    /// Sets the quantity of one product (adds the line when missing). `Conflict` when the
    /// cart already holds `MAX_CART_LINES` other products.
    async fn set_quantity(
        &self,
        user_id: UserId,
        product_id: ProductId,
        quantity: i64,
    ) -> DomainResult<()>;
    /// `NotFound` when the product is not in the cart.
    async fn remove(&self, user_id: UserId, product_id: ProductId) -> DomainResult<()>;
    async fn clear(&self, user_id: UserId) -> DomainResult<()>;
}

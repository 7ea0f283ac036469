//! `orders`: checkout from the cart, list and read one's own orders.
//!
//! How checkout runs is the one place where the two builds differ on purpose: the monolith
//! runs it over local transactions on its one database (the payment provider called between
//! two of them, or inside one: `checkout_mode`), the microservices as a saga owned by
//! `orders`. Both honour the same contract, written here.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::ProductId;
use crate::users::UserId;
use crate::{DomainError, DomainResult};

pub type OrderId = i64;

pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
pub const MAX_NOTE_CHARS: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Checkout started and has not finished (only ever seen in the saga).
    Pending,
    Confirmed,
    /// Checkout failed after it started; everything it held was given back.
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<OrderStatus> {
        match text {
            "pending" => Some(OrderStatus::Pending),
            "confirmed" => Some(OrderStatus::Confirmed),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// The price quoted at checkout, per unit.
    pub unit_price_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub lines: Vec<OrderLine>,
    pub note: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderList {
    pub items: Vec<Order>,
}

/// `POST /api/orders` body. The whole cart is checked out; `{}` is the usual body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Free text kept on the order (at most 500 characters).
    #[serde(default)]
    pub note: Option<String>,
}

impl CheckoutRequest {
    pub fn validate(&self) -> DomainResult<()> {
        let Some(note) = &self.note else {
            return Ok(());
        };
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(DomainError::Invalid(format!(
                "note must be at most {MAX_NOTE_CHARS} characters"
            )));
        }
        // Line breaks and tabs are fine in a note; NUL and other controls are not (PostgreSQL
        // cannot store a NUL in text, and the two backends must answer alike).
        if note
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(DomainError::Invalid(
                "note must not contain control characters".into(),
            ));
        }
        Ok(())
    }

    /// What "the same body" means for an idempotency key: a hash of the parsed request,
    /// so whitespace and key order do not matter but every field does.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
    }
}

/// Prices cart lines at the catalog's current prices: one order line per cart line. A
/// product missing from `products` is no longer sold, a `Conflict`. Both builds quote with
/// this rule; only where the products come from differs (a query or an HTTP call).
pub fn quote(
    cart: &[crate::cart::CartLine],
    products: &[crate::catalog::Product],
) -> DomainResult<Vec<OrderLine>> {
    cart.iter()
        .map(|line| {
            let product = products
                .iter()
                .find(|product| product.id == line.product_id)
                .ok_or_else(|| {
                    DomainError::Conflict(format!("product {} is no longer sold", line.product_id))
                })?;
            Ok(OrderLine {
                product_id: product.id,
                sku: product.sku.clone(),
                name: product.name.clone(),
                quantity: line.quantity,
                unit_price_cents: product.price_cents,
            })
        })
        .collect()
}

/// Validates an `Idempotency-Key` header value.
pub fn validate_idempotency_key(key: &str) -> DomainResult<()> {
    let printable = key.chars().all(|c| c.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_CHARS || !printable {
        return Err(DomainError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters"
        )));
    }
    Ok(())
}

/// The result of a checkout: the order, and whether it was a replay of an earlier request
/// with the same idempotency key (the body is identical either way).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutOutcome {
    pub order: Order,
    pub replayed: bool,
}

#[async_trait]
pub trait Orders: Send + Sync {
    /// Checks out the user's whole cart: quote, reserve, charge, confirm, empty the cart.
    ///
    /// Same key and same request: the same order (`replayed = true`). Same key, another
    /// request: `Invalid`. Empty cart: `Invalid`. Not enough stock: `Conflict`, and nothing
    /// is held or charged.
    async fn checkout(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome>;
    /// The user's orders, newest first.
    async fn list(&self, user_id: UserId) -> DomainResult<Vec<Order>>;
    /// `NotFound` when the order does not exist or belongs to someone else.
    async fn get(&self, user_id: UserId, order_id: OrderId) -> DomainResult<Order>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_formatting_but_not_content() {
        let empty: CheckoutRequest = serde_json::from_str("{}").unwrap();
        let spaced: CheckoutRequest = serde_json::from_str(" { } ").unwrap();
        let noted: CheckoutRequest = serde_json::from_str(r#"{"note":"gift"}"#).unwrap();
        assert_eq!(empty.fingerprint(), spaced.fingerprint());
        assert_ne!(empty.fingerprint(), noted.fingerprint());
    }

    #[test]
    fn a_note_may_hold_line_breaks_but_no_nul() {
        let note = |text: &str| CheckoutRequest {
            note: Some(text.into()),
        };
        assert!(note("line one\nline two\tend").validate().is_ok());
        assert!(note("nul\u{0}here").validate().is_err());
        assert!(note(&"n".repeat(501)).validate().is_err());
    }

    #[test]
    fn idempotency_keys_must_be_short_printable_ascii() {
        assert!(validate_idempotency_key("order-1").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("with space").is_err());
        assert!(validate_idempotency_key("ключ").is_err());
        assert!(validate_idempotency_key(&"k".repeat(201)).is_err());
    }
}

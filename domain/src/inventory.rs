//! `inventory`: stock per product; reserve / commit / release with reservation ids and TTL.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::DomainResult;
use crate::catalog::ProductId;

/// Below this many units a product page says `low`.
pub const LOW_STOCK_THRESHOLD: i64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    InStock,
    Low,
    OutOfStock,
    /// Inventory did not answer; the product page still renders.
    Unknown,
}

impl Availability {
    pub fn from_available(available: i64) -> Availability {
        match available {
            ..=0 => Availability::OutOfStock,
            1..=LOW_STOCK_THRESHOLD => Availability::Low,
            _ => Availability::InStock,
        }
    }
}

/// One line of a reservation: this many units of this product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockLine {
    pub product_id: ProductId,
    pub quantity: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Held,
    Committed,
    Released,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Held => "held",
            ReservationState::Committed => "committed",
            ReservationState::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<ReservationState> {
        match text {
            "held" => Some(ReservationState::Held),
            "committed" => Some(ReservationState::Committed),
            "released" => Some(ReservationState::Released),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reservation {
    /// Chosen by the caller, so a retried reserve is idempotent.
    pub id: String,
    pub state: ReservationState,
    pub lines: Vec<StockLine>,
    pub expires_at_ms: i64,
}

#[async_trait]
pub trait Inventory: Send + Sync {
    /// Units available to sell right now.
    async fn available(&self, product_id: ProductId) -> DomainResult<i64>;
    /// Holds stock for every line or for none (`Conflict` when any line is short).
    /// Reserving an id that already exists returns that reservation unchanged.
    async fn reserve(
        &self,
        reservation_id: &str,
        lines: &[StockLine],
        ttl_ms: i64,
    ) -> DomainResult<Reservation>;
    /// Turns held units into sold units. Idempotent.
    async fn commit(&self, reservation_id: &str) -> DomainResult<Reservation>;
    /// Returns held units to the shelf. Idempotent; releasing a committed reservation is a
    /// `Conflict`.
    async fn release(&self, reservation_id: &str) -> DomainResult<Reservation>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_follows_the_low_stock_threshold() {
        assert_eq!(Availability::from_available(0), Availability::OutOfStock);
        assert_eq!(Availability::from_available(1), Availability::Low);
        assert_eq!(
            Availability::from_available(LOW_STOCK_THRESHOLD),
            Availability::Low
        );
        assert_eq!(
            Availability::from_available(LOW_STOCK_THRESHOLD + 1),
            Availability::InStock
        );
    }
}

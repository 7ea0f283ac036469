//! Typed, failing accessors for JSON answers, so a case reads `order.i64_at("total_cents")?`
//! and a missing or mistyped field fails the case with its name instead of passing as null.

use anyhow::{Context as _, Result};
use serde_json::Value;

/// Field access that fails loudly; implemented for `serde_json::Value`.
pub trait Fields {
    fn field(&self, key: &str) -> Result<&Value>;
    fn i64_at(&self, key: &str) -> Result<i64>;
    fn str_at(&self, key: &str) -> Result<&str>;
    fn array_at(&self, key: &str) -> Result<&[Value]>;
}

impl Fields for Value {
    fn field(&self, key: &str) -> Result<&Value> {
        self.as_object()
            .with_context(|| format!("expected a JSON object with {key:?}, got {self}"))?
            .get(key)
            .with_context(|| format!("field {key:?} is missing in {self}"))
    }

    fn i64_at(&self, key: &str) -> Result<i64> {
        let value = self.field(key)?;
        value
            .as_i64()
            .with_context(|| format!("field {key:?} is not an integer: {value}"))
    }

    fn str_at(&self, key: &str) -> Result<&str> {
        let value = self.field(key)?;
        value
            .as_str()
            .with_context(|| format!("field {key:?} is not a string: {value}"))
    }

    fn array_at(&self, key: &str) -> Result<&[Value]> {
        let value = self.field(key)?;
        value
            .as_array()
            .map(Vec::as_slice)
            .with_context(|| format!("field {key:?} is not an array: {value}"))
    }
}

//! The SQL side of every context: SQLite (embedded default) or PostgreSQL through sqlx's
//! `Any` driver, one SQL text for both backends.
//!
//! Architecture invariant: every table is owned by exactly one context module here, and no
//! query touches another context's tables (no cross-context joins, no foreign keys across
//! contexts). That is what keeps the microservices split honest: each context's module can
//! run against its own database unchanged.
//!
//! Each module offers two layers: a type implementing the context's domain trait over a
//! [`Db`] (used by the monolith and by that context's service), and `*_in` functions that
//! take an open connection, so the monolith can run several contexts' steps inside one
//! transaction.

pub mod admin;
pub mod cart;
pub mod catalog;
pub mod db;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod recommendations;
pub mod users;

pub use db::{Backend, Db, DbOptions, PoolUse, db_error};

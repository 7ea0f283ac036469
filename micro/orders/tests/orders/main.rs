//! The orders service black-box: real catalog, inventory, cart, payments and orders servers on
//! random ports, each over a fresh database, driven through the orders internal API and the
//! services' admin APIs.

/// Starting and stopping the five services, databases, admin calls, polling.
mod support;

/// Checkouts that succeed or are refused up front: confirm, replay, idempotency rules.
mod checkout;

/// Checkouts that fail after something was held: what is given back, what the client hears.
mod compensation;

/// Sagas whose driver died: finished by the next orders process.
mod recovery;

/// Checkouts through a partial fault: the saga's idempotent steps retried within the budget.
mod partial_fault;

/// The same saga over PostgreSQL (runs when `SHOPLAB_TEST_POSTGRES_URL` is set).
mod postgres;

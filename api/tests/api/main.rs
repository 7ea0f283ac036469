//! The `api` crate's integration tests: servers on real sockets, driven as a client would.

// How `api::server::serve` treats connections: the header-read and idle deadlines, the
// connection cap, and the graceful shutdown with its drain deadline.
mod connections;

//! The host of any group of contexts: the one table of every context's mount ([`MOUNTS`]),
//! and the process that serves a group from it ([`run`]).
//!
//! The service crates cannot know each other (each is one context), so the table of all of
//! them lives in the one crate that links them all: glue at the top. Three things host
//! groups from it — the `micro-host` binary (the `shoplab/host` image, which runs any
//! topology's process in a container), `shoplab service GROUP` (the lab's local processes),
//! and the contract tests — so a context added here is hosted the same way everywhere. The
//! per-context `micro-*` binaries stay: each is its context alone, what the microservices
//! build's own images run.

use domain::Context;
use domain::topology::Group;
use micro_kit::Mount;

/// Every context's mount: a process built with this table can host any group.
pub const MOUNTS: [(Context, Mount); 7] = [
    (Context::Catalog, micro_catalog::mount),
    (Context::Inventory, micro_inventory::mount),
    (Context::Cart, micro_cart::mount),
    (Context::Orders, micro_orders::mount),
    (Context::Payments, micro_payments::mount),
    (Context::Users, micro_users::mount),
    (Context::Recommendations, micro_recommendations::mount),
];

/// A group as a command line writes it (`catalog+recommendations`), with the error naming
/// the context that is unknown or named twice.
pub fn parse_group(text: &str) -> Result<Group, String> {
    Group::parse(text).map_err(|error| format!("{text:?} is not a group of contexts: {error}"))
}

/// A process name: lowercase letters, digits, `-` and `+`, as a file, database or container
/// name built from it may hold.
pub fn parse_process_name(name: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '+';
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(format!(
            "{name:?} is not a process name: lowercase letters, digits, '-' and '+' only"
        ));
    }
    Ok(name.to_owned())
}

/// Serves `group` from its flags until SIGTERM/SIGINT, calling itself `name` when given
/// (its preset's group name, e.g. `core`) and by its contexts joined by `+` otherwise.
pub async fn run(
    group: Group,
    name: Option<String>,
    args: &api::cli::ServeArgs,
) -> anyhow::Result<()> {
    let group = match name {
        Some(name) => group.named(name),
        None => group,
    };
    micro_kit::run_group(group, &MOUNTS, args).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_mounts_every_context_exactly_once() {
        for context in Context::ALL {
            let count = MOUNTS
                .iter()
                .filter(|(hosted, _)| *hosted == context)
                .count();
            assert_eq!(count, 1, "{context} is mounted {count} times");
        }
    }

    #[test]
    fn a_bad_group_or_process_name_is_refused_with_the_reason() {
        let group = parse_group("catalog+basket").unwrap_err();
        assert!(group.contains("\"basket\" is not a context"), "{group}");
        let name = parse_process_name("Cart Orders").unwrap_err();
        assert!(name.contains("lowercase letters"), "{name}");
        assert_eq!(parse_process_name("buy").as_deref(), Ok("buy"));
    }
}

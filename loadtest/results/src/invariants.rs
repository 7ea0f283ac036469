//! What the invariant checker found (I1 to I9), as recorded after every experiment.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What the checker found: one row per invariant, I1 to I9 (results of older runs have
/// fewer rows; each row names itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Every checked invariant holds.
    pub valid: bool,
    pub invariants: Vec<InvariantResult>,
    /// How the history's maybe-applied checkouts were resolved; `None` without a history.
    pub maybe_applied: Option<MaybeApplied>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantResult {
    /// `I1` to `I9`, as the checker (`loadtest-check`) numbers them.
    pub id: String,
    pub name: String,
    /// False when the invariant needs the request history and none was given.
    pub checked: bool,
    /// How many products, orders, keys or reservations break it.
    pub violations: usize,
    /// The first violation in words, or why the invariant was not checked.
    pub first_example: Option<String>,
}

/// Checkouts whose answer never said whether they happened (no answer, timeout, 5xx),
/// resolved by their idempotency key against the audit. Neither kind is a failure: applied
/// ones must then satisfy every invariant a confirmed order does, and unapplied ones must
/// have left nothing behind, which I5–I9 check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaybeApplied {
    /// Distinct idempotency keys with at least one maybe-applied checkout.
    pub keys: usize,
    /// Keys that ended in a confirmed order.
    pub applied: usize,
    /// Keys that left no confirmed order.
    pub not_applied: usize,
}

/// What `first_example` says for an invariant that needs a history when none was given.
pub const NOT_CHECKED: &str = "not checked (no history)";

impl CheckReport {
    /// The invariants with at least one violation.
    pub fn violated(&self) -> impl Iterator<Item = &InvariantResult> {
        self.invariants
            .iter()
            .filter(|invariant| invariant.violations > 0)
    }

    /// The report as a table for people: invariant, violations, first example.
    pub fn table(&self) -> String {
        table(self)
    }
}

/// The report as aligned columns: invariant, violations, first example; then the
/// maybe-applied resolution and a verdict line.
fn table(report: &CheckReport) -> String {
    let labels: Vec<String> = report
        .invariants
        .iter()
        .map(|invariant| format!("{} {}", invariant.id, invariant.name))
        .collect();
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  first example",
        "invariant", "violations"
    );
    for (label, invariant) in labels.iter().zip(&report.invariants) {
        let violations = if invariant.checked {
            invariant.violations.to_string()
        } else {
            "-".to_owned()
        };
        let example = invariant.first_example.as_deref().unwrap_or("");
        let _ = writeln!(out, "{label:<width$}  {violations:>10}  {example}");
    }
    if let Some(maybe) = &report.maybe_applied {
        let _ = writeln!(
            out,
            "maybe-applied checkouts (no answer, timeout or 5xx), by idempotency key: {} ({} applied, {} not applied; none counted as failed)",
            maybe.keys, maybe.applied, maybe.not_applied
        );
    }
    let checked = report
        .invariants
        .iter()
        .filter(|invariant| invariant.checked)
        .count();
    let violated = report.violated().count();
    if violated == 0 {
        let _ = writeln!(out, "valid: all {checked} checked invariants hold");
    } else {
        let _ = writeln!(
            out,
            "INVALID: {violated} of {checked} checked invariants violated"
        );
    }
    out
}

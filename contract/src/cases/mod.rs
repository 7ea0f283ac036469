//! Every contract case, grouped by the area of the public API it specifies.
//!
//! A case is an `async fn(Ctx) -> anyhow::Result<()>` whose name is the sentence it proves;
//! the harness has already reset the target to `default_reset()` when it starts.

/// Lists an area's cases as `area::sentence`, so the name printed by the runner is the
/// function's own name and cannot drift from it.
macro_rules! cases {
    ($area:ident: $($name:ident),* $(,)?) => {
        vec![$(
            $crate::Case {
                name: concat!(stringify!($area), "::", stringify!($name)),
                run: |ctx| futures::FutureExt::boxed($name(ctx)),
            }
        ),*]
    };
}

mod admin;
mod cart;
mod faults;
mod idempotency;
mod ops;
mod orders;
mod products;
mod robustness;
mod users;

use crate::Case;

/// Every case, in a stable order.
pub fn cases() -> Vec<Case> {
    [
        ops::cases(),
        users::cases(),
        products::cases(),
        cart::cases(),
        orders::cases(),
        idempotency::cases(),
        admin::cases(),
        faults::cases(),
        robustness::cases(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_case_has_a_unique_name() {
        let mut names: Vec<&str> = super::cases().iter().map(|case| case.name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "two cases share a name");
    }
}

//! The orders service black-box: real catalog, inventory, cart, payments and orders servers on
//! random ports, each over a fresh database, driven through the orders internal API and the
//! services' admin APIs. The PostgreSQL variants run where a server is (`testkit::needs::
//! postgres`) and are reported ignored, with the reason, where none is.

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

/// The stock commit after the charge owed when inventory does not answer: committed later,
/// or refunded and cancelled when the reservation ran out first.
mod owed_commit;

/// The same saga over PostgreSQL.
mod postgres;

use std::process::ExitCode;

use testkit::needs::postgres;
use testkit::{Suite, tests};

fn main() -> ExitCode {
    let mut suite = Suite::new();
    tests!(suite, checkout::a_checkout_confirms_the_order_commits_the_reservation_charges_the_total_and_empties_the_cart);
    tests!(
        suite,
        checkout::a_replay_with_the_same_key_returns_the_same_order_marked_replayed
    );
    tests!(
        suite,
        checkout::the_same_key_with_a_different_request_is_invalid
    );
    tests!(
        suite,
        checkout::an_empty_cart_is_invalid_and_a_retry_with_the_same_key_after_filling_it_succeeds
    );
    tests!(
        suite,
        checkout::checkout_without_enough_stock_is_a_conflict_holds_nothing_and_frees_the_key
    );
    tests!(suite, checkout::list_and_get_show_only_the_users_own_orders);
    tests!(suite, compensation::payments_failing_answers_503_releases_the_reservation_and_cancels_without_keeping_money);
    tests!(
        suite,
        compensation::inventory_failing_answers_503_charges_nothing_and_frees_the_key_once_healed
    );
    tests!(
        suite,
        compensation::inventory_down_answers_503_and_charges_nothing
    );
    tests!(suite, partial_fault::under_half_errors_on_inventory_attempts_per_call_stay_under_1_3_and_checkouts_beat_two_required_calls);
    tests!(suite, owed_commit::inventory_failing_after_the_charge_still_confirms_and_the_stock_is_committed_once_it_heals);
    tests!(suite, owed_commit::a_reservation_that_runs_out_before_the_owed_commit_refunds_and_cancels_the_confirmed_order);
    tests!(
        suite,
        recovery::a_checkout_killed_while_payments_hangs_is_compensated_by_the_next_orders_process
    );
    tests!(
        suite,
        recovery::a_checkout_killed_after_the_charge_is_confirmed_by_the_next_orders_process
    );
    tests!(suite, postgres::on_postgres_a_checkout_confirms_commits_charges_and_empties_the_cart, needs postgres());
    tests!(suite, postgres::on_postgres_payments_failing_answers_503_and_gives_everything_back, needs postgres());
    tests!(suite, postgres::on_postgres_a_checkout_killed_mid_charge_is_compensated_after_a_restart, needs postgres());
    suite.run()
}

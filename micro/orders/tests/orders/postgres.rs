use anyhow::Result;

use crate::support::{Backend, postgres_url};

#[tokio::test]
async fn on_postgres_a_checkout_confirms_commits_charges_and_empties_the_cart() -> Result<()> {
    if postgres_url().is_none() {
        return Ok(());
    }
    crate::checkout::a_checkout_confirms_commits_charges_the_total_and_empties_the_cart(
        Backend::Postgres,
    )
    .await
}

#[tokio::test]
async fn on_postgres_payments_failing_answers_503_and_gives_everything_back() -> Result<()> {
    if postgres_url().is_none() {
        return Ok(());
    }
    crate::compensation::payments_failing_answers_503_and_gives_everything_back(Backend::Postgres)
        .await
}

#[tokio::test]
async fn on_postgres_a_checkout_killed_mid_charge_is_compensated_after_a_restart() -> Result<()> {
    if postgres_url().is_none() {
        return Ok(());
    }
    crate::recovery::a_checkout_killed_while_payments_hangs_is_compensated_by_the_next_orders(
        Backend::Postgres,
    )
    .await
}

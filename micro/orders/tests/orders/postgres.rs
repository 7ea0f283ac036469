use anyhow::Result;

use crate::support::Backend;

pub async fn on_postgres_a_checkout_confirms_commits_charges_and_empties_the_cart(
    server: String,
) -> Result<()> {
    crate::checkout::a_checkout_confirms_commits_charges_the_total_and_empties_the_cart(
        Backend::Postgres(server),
    )
    .await
}

pub async fn on_postgres_payments_failing_answers_503_and_gives_everything_back(
    server: String,
) -> Result<()> {
    crate::compensation::payments_failing_answers_503_and_gives_everything_back(Backend::Postgres(
        server,
    ))
    .await
}

pub async fn on_postgres_a_checkout_killed_mid_charge_is_compensated_after_a_restart(
    server: String,
) -> Result<()> {
    crate::recovery::a_checkout_killed_while_payments_hangs_is_compensated_by_the_next_orders(
        Backend::Postgres(server),
    )
    .await
}

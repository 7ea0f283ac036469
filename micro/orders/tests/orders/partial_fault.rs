//! A partial fault in inventory, which a checkout calls once in its path (reserve; the
//! commit after the charge is owed, not waited for, and release only when compensating): the
//! hop retries the idempotent steps within the retry budget, so attempts per call stay at
//! most 1.3 while checkouts succeed more often than a saga waiting for two inventory calls
//! could, the money and the stock stay consistent, and checkouts succeed again as soon as the
//! fault heals.

use std::time::{Duration, Instant};

use anyhow::Result;
use domain::Context;
use serde_json::json;

use crate::support::{Backend, Shop};

/// The sum of every series of `name` whose labels contain `label`, in Prometheus text.
pub(crate) fn sum_of(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the design promises here, with the default budget (one retry per eight calls plus
/// one a second, over the last second). A checkout succeeds when its reserve does: the first
/// attempt half the time, and a failed one is retried while the budget has room. Failed
/// first attempts (half of all inventory calls: reserves, commits, releases) want far more
/// retries than the budget lends, so few get one: about 1.13 attempts per call, and a
/// checkout succeeds with probability about 0.5 + 0.5 x 0.13 = 56 % (measured 157 to 183 of
/// 300 in six runs, mean 168; one deviation of the count is about 9).
///
/// A saga that waited for the commit too would need both calls to succeed: at most
/// 0.65^2 = 42 % (127 of 300) at 1.3 attempts per call whatever the budget, since each call
/// succeeds with at most 0.5 + 0.5 x 0.3, and about 0.56^2 = 31 % (94) with this budget.
/// 135 lies above the first, far above the second, and more than three deviations below
/// what is measured, so this fails when the commit is back in the checkout's path, not by
/// luck.
pub async fn under_half_errors_on_inventory_attempts_per_call_stay_under_1_3_and_checkouts_beat_two_required_calls()
-> Result<()> {
    // Twenty units of each product: 300 checkouts of one unit over products 1 to 19 never
    // run out, whatever is still held by a saga waiting to be compensated. Product 20 is
    // kept for after the heal.
    let shop = Shop::start_stocked(Backend::Sqlite, 20, |_| {}).await?;
    shop.fault(
        &shop.inventory,
        Context::Inventory,
        "errors",
        json!({ "rate": 0.5 }),
    )
    .await?;
    let checkouts: i64 = 300;
    let mut confirmed = 0;
    for attempt in 0..checkouts {
        // On an emptied cart: a failed checkout leaves its cart as it was.
        shop.clear_cart(1).await?;
        shop.fill_cart(1, &[(attempt % 19 + 1, 1)]).await?;
        if shop
            .checkout(1, &format!("partial-{attempt}"))
            .await
            .is_ok()
        {
            confirmed += 1;
        }
    }
    let metrics = shop.metrics(&shop.orders).await?;
    let calls = sum_of(&metrics, "hop_calls_total{", "upstream=\"inventory\"");
    let retries = sum_of(&metrics, "hop_retries_total{", "upstream=\"inventory\"");
    let attempts_per_call = (calls + retries) / calls;
    eprintln!(
        "{confirmed} of {checkouts} checkouts confirmed; {calls} inventory calls, {retries} retries, {attempts_per_call:.3} attempts per call"
    );
    assert!(
        confirmed >= 135,
        "{confirmed} of {checkouts} checkouts confirmed: no more than two required inventory calls would give"
    );
    assert!(calls >= checkouts as f64, "{calls} inventory calls");
    // Retries were made, and the budget held them to the lab's target.
    assert!(retries > 0.0, "the steps were retried");
    assert!(
        attempts_per_call <= 1.3,
        "{retries} retries for {calls} calls: {attempts_per_call:.3} attempts per call"
    );

    shop.heal(&shop.inventory).await?;
    let healed = Instant::now();
    shop.clear_cart(1).await?;
    shop.fill_cart(1, &[(20, 1)]).await?;
    shop.checkout(1, "after-the-heal").await?;
    assert!(
        healed.elapsed() < Duration::from_secs(1),
        "the first checkout after the heal succeeded, {:?} after it",
        healed.elapsed()
    );
    // The owed commits are made, the compensations finished: nothing held, owed or pending.
    shop.wait_until("every saga settled and the books balance", |audits| {
        audits.consistent()
    })
    .await?;
    shop.stop().await;
    Ok(())
}

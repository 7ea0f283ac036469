//! A partial fault in a service the saga calls twice per checkout (inventory: reserve, then
//! commit; release when compensating): the hop retries those idempotent steps after a
//! backoff, paid from the retry budget, so the fault costs retries rather than checkouts, the
//! money and the stock stay consistent, and checkouts succeed again as soon as it heals.

use std::time::{Duration, Instant};

use anyhow::Result;
use domain::Context;
use serde_json::json;

use crate::support::{Backend, Shop};

/// The sum of every series of `name` whose labels contain `label`, in Prometheus text.
fn sum_of(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the design promises here: with two retries, a step fails only when three attempts
/// in a row do, 1/8 at 50 %, so a checkout (reserve and commit) would succeed with
/// probability (7/8)^2 = 77 %, against (1/2)^2 = 25 % without retries — as far as the budget
/// allows: its reserve (5 a second over 10 s, so 50) plus a quarter of the calls. About 115
/// inventory calls here want about 80 retries, so the budget binds near its end and about
/// 72 % of checkouts succeed (measured 38 to 50 of 60 in six runs, mean 44).
pub async fn under_half_errors_on_inventory_checkouts_succeed_as_the_retries_promise_and_stay_consistent()
-> Result<()> {
    let shop = Shop::start(Backend::Sqlite).await?;
    shop.fault(
        &shop.inventory,
        Context::Inventory,
        "errors",
        json!({ "rate": 0.5 }),
    )
    .await?;
    // Three checkouts of each of products 1 to 19, three units in stock each: a checkout
    // holds at most one unit of its product, so stock never runs out, whatever is still held
    // by a saga waiting to be compensated. Product 20 is kept for after the heal.
    let checkouts: i64 = 57;
    let fault_started = Instant::now();
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
    // Expected about 41 of 57, with a spread of about 4.5 seen across runs (the budget binds
    // at a different checkout each time); without retries about 14, spread 3.3. 26 lies more
    // than three spreads from each, so this fails when the retries are gone, not by luck.
    assert!(
        confirmed >= 26,
        "{confirmed} of {checkouts} checkouts confirmed"
    );

    let metrics = shop.metrics(&shop.orders).await?;
    let calls = sum_of(&metrics, "hop_calls_total{", "upstream=\"inventory\"");
    let retries = sum_of(&metrics, "hop_retries_total{", "upstream=\"inventory\"");
    assert!(calls >= checkouts as f64, "{calls} inventory calls");
    assert!(retries > 0.0, "the steps were retried");
    // The budget lends 0.25 retries per call plus a reserve of 5 per second, counted over
    // its 10 s window: over a phase of T seconds the reserve adds up to at most 5 x (T + 10).
    let reserve = 5.0 * (fault_started.elapsed().as_secs_f64() + 10.0);
    assert!(
        retries <= 0.25 * calls + reserve,
        "{retries} retries for {calls} calls: more than the budget's ratio and reserve ({reserve:.0})"
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
    shop.wait_until("every saga settled and the books balance", |audits| {
        audits.consistent()
    })
    .await?;
    shop.stop().await;
    Ok(())
}

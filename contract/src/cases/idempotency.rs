//! Idempotent checkout: the `Idempotency-Key` header, replays (sequential and concurrent),
//! a key reused with another body, and keys being scoped to their user.

use anyhow::{Result, ensure};
use serde_json::json;

use crate::client::{all, stock_row};
use crate::{Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![idempotency:
        a_replay_with_the_same_key_returns_a_byte_identical_body_and_charges_once,
        a_replay_with_the_same_key_and_another_body_returns_422,
        checkout_without_an_idempotency_key_returns_400,
        checkout_with_an_invalid_idempotency_key_returns_400,
        concurrent_replays_of_one_key_yield_one_order,
        idempotency_keys_are_per_user,
    ]
}

async fn a_replay_with_the_same_key_returns_a_byte_identical_body_and_charges_once(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 2).await?;
    let first = ctx.checkout(&token, "replay-me").await?;
    first.expect(201)?;
    // The cart is empty now, so only the stored answer can make the replay succeed.
    let replay = ctx.checkout(&token, "replay-me").await?;
    replay.expect(201)?;
    ensure!(
        replay.text == first.text,
        "replay body differs:\n{}\n{}",
        first.text,
        replay.text
    );
    ensure!(
        replay.header("idempotent-replayed") == Some("true"),
        "the replay lacks Idempotent-Replayed: true"
    );
    // Whitespace does not make another body.
    let spaced = ctx
        .request(reqwest::Method::POST, "/api/orders")
        .token(&token)
        .idempotency_key("replay-me")
        .raw_body(" { } ", Some("application/json"))
        .await?;
    ensure!(
        spaced.expect(201)?.i64_at("id")? == first.json.i64_at("id")?,
        "{}",
        spaced.text
    );
    ensure!(
        ctx.orders(&token).await?.len() == 1,
        "a replay created a second order"
    );
    let audit = ctx.audit().await?;
    ensure!(
        stock_row(&audit, 4)?.i64_at("sold")? == 2,
        "stock charged twice: {audit}"
    );
    ensure!(
        audit.array_at("charges")?.len() == 1,
        "charged twice: {audit}"
    );
    ensure!(audit.array_at("orders")?.len() == 1, "{audit}");
    Ok(())
}

async fn a_replay_with_the_same_key_and_another_body_returns_422(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 1).await?;
    ctx.checkout(&token, "k-1").await?.expect(201)?;
    ctx.put_in_cart(&token, 5, 1).await?;
    let resp = ctx
        .post("/api/orders", json!({"note": "other"}))
        .token(&token)
        .idempotency_key("k-1")
        .await?;
    resp.expect_error(422, "invalid")?;
    ensure!(
        ctx.orders(&token).await?.len() == 1,
        "a second order was created"
    );
    ensure!(
        ctx.cart(&token).await?.array_at("items")?.len() == 1,
        "the cart was consumed"
    );
    Ok(())
}

async fn checkout_without_an_idempotency_key_returns_400(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 1).await?;
    ctx.post("/api/orders", json!({}))
        .token(&token)
        .await?
        .expect_error(400, "bad_request")?;
    ensure!(
        ctx.orders(&token).await?.is_empty(),
        "an order was created without a key"
    );
    Ok(())
}

async fn checkout_with_an_invalid_idempotency_key_returns_400(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 1).await?;
    let too_long = "k".repeat(201);
    for key in [
        b"".as_slice(),
        b"with space",
        "ключ".as_bytes(),
        too_long.as_bytes(),
        b"tab\there",
    ] {
        let resp = ctx
            .post("/api/orders", json!({}))
            .token(&token)
            .header_bytes("idempotency-key", key)
            .await?;
        resp.expect_error(400, "bad_request")?;
    }
    ensure!(
        ctx.orders(&token).await?.is_empty(),
        "an order was created with a bad key"
    );
    ctx.checkout(&token, &"k".repeat(200)).await?.expect(201)?;
    Ok(())
}

async fn concurrent_replays_of_one_key_yield_one_order(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 9, 3).await?;
    let answers = all((0..8)
        .map(|_| ctx.checkout(&token, "double-click"))
        .collect())
    .await?;
    for resp in &answers {
        resp.expect(201)?;
        ensure!(
            resp.text == answers[0].text,
            "different bodies for one key: {}",
            resp.text
        );
    }
    ensure!(
        ctx.orders(&token).await?.len() == 1,
        "one key made several orders"
    );
    let audit = ctx.audit().await?;
    ensure!(
        stock_row(&audit, 9)?.i64_at("sold")? == 3,
        "stock charged more than once"
    );
    ensure!(
        audit.array_at("charges")?.len() == 1,
        "charged more than once: {audit}"
    );
    Ok(())
}

async fn idempotency_keys_are_per_user(ctx: Ctx) -> Result<()> {
    let alice = ctx.login_seeded(1).await?;
    let bob = ctx.login_seeded(2).await?;
    ctx.put_in_cart(&alice, 1, 1).await?;
    ctx.put_in_cart(&bob, 2, 2).await?;
    let alice_order = ctx
        .checkout(&alice, "shared-key")
        .await?
        .expect(201)?
        .clone();
    let bob_resp = ctx.checkout(&bob, "shared-key").await?;
    let bob_order = bob_resp.expect(201)?;
    ensure!(
        bob_resp.header("idempotent-replayed") != Some("true"),
        "bob got alice's replay"
    );
    ensure!(
        bob_order.i64_at("id")? != alice_order.i64_at("id")?,
        "one order for two users"
    );
    let bob_line = &bob_order.array_at("lines")?[0];
    ensure!(
        bob_line.i64_at("product_id")? == 2 && bob_line.i64_at("quantity")? == 2,
        "{bob_order}"
    );
    ensure!(
        ctx.orders(&alice).await?.len() == 1 && ctx.orders(&bob).await?.len() == 1,
        "lists"
    );
    Ok(())
}

//! `orders`: checkout (pricing, validation, stock conflicts, the last-unit race) and reading
//! one's own orders; stock and money are checked through `/admin/audit`.

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};

use crate::client::{all, stock_row};
use crate::{Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![orders:
        checkout_creates_a_confirmed_order_priced_from_the_catalog_and_empties_the_cart,
        checkout_keeps_the_note_on_the_order,
        checkout_with_an_empty_cart_returns_422,
        checkout_with_a_note_over_500_characters_returns_422_and_keeps_the_cart,
        checkout_with_unknown_fields_or_wrong_types_returns_422,
        checkout_without_stock_returns_409_and_changes_nothing,
        the_last_unit_raced_by_several_users_is_sold_exactly_once,
        orders_are_listed_newest_first_and_only_to_their_owner,
        reading_an_own_order_returns_what_checkout_returned,
        reading_another_users_order_returns_404,
        reading_an_unknown_order_returns_404_and_a_non_numeric_id_400,
        orders_need_a_token,
        the_audit_is_consistent_after_a_checkout,
    ]
}

async fn checkout_creates_a_confirmed_order_priced_from_the_catalog_and_empties_the_cart(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 2, 3).await?;
    ctx.put_in_cart(&token, 11, 1).await?;
    let started_ms = domain::now_ms();
    let resp = ctx.checkout(&token, "order-1").await?;
    let order = resp.expect(201)?;
    ensure!(order.i64_at("id")? > 0, "{order}");
    ensure!(order.str_at("status")? == "confirmed", "{order}");
    ensure!(order.field("note")?.is_null(), "no note was given: {order}");
    let created = order.i64_at("created_at_ms")?;
    ensure!(
        (started_ms - 60_000..=domain::now_ms() + 60_000).contains(&created),
        "{order}"
    );
    ensure!(
        resp.header("idempotent-replayed") != Some("true"),
        "a first checkout is no replay"
    );
    let lines = order.array_at("lines")?;
    ensure!(lines.len() == 2, "two lines expected: {order}");
    let mut total = 0;
    for (line, (product_id, quantity)) in lines.iter().zip([(2, 3), (11, 1)]) {
        let product = ctx.product(product_id).await?;
        ensure!(
            line.i64_at("product_id")? == product_id,
            "line order: {order}"
        );
        ensure!(line.i64_at("quantity")? == quantity, "{line}");
        ensure!(line.str_at("sku")? == product.str_at("sku")?, "{line}");
        ensure!(line.str_at("name")? == product.str_at("name")?, "{line}");
        ensure!(
            line.i64_at("unit_price_cents")? == product.i64_at("price_cents")?,
            "{line}"
        );
        total += quantity * product.i64_at("price_cents")?;
    }
    ensure!(
        order.i64_at("total_cents")? == total,
        "total is not the sum of lines: {order}"
    );
    let cart = ctx.cart(&token).await?;
    ensure!(
        cart.array_at("items")?.is_empty() && cart.i64_at("total_cents")? == 0,
        "{cart}"
    );
    Ok(())
}

async fn checkout_keeps_the_note_on_the_order(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 1, 1).await?;
    let note = "Leave it by the door, s'il vous plaît 📦'; DELETE FROM orders;--";
    let resp = ctx
        .post("/api/orders", json!({"note": note}))
        .token(&token)
        .idempotency_key("k")
        .await?;
    let order = resp.expect(201)?;
    ensure!(order.str_at("note")? == note, "note changed: {order}");
    let read = ctx
        .get(&format!("/api/orders/{}", order.i64_at("id")?))
        .token(&token)
        .await?;
    ensure!(
        read.expect(200)?.str_at("note")? == note,
        "stored note changed: {}",
        read.text
    );
    Ok(())
}

async fn checkout_with_an_empty_cart_returns_422(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.checkout(&token, "empty")
        .await?
        .expect_error(422, "invalid")?;
    ensure!(
        ctx.orders(&token).await?.is_empty(),
        "an empty order was created"
    );
    let audit = ctx.audit().await?;
    ensure!(
        audit.array_at("charges")?.is_empty(),
        "an empty cart was charged: {audit}"
    );
    Ok(())
}

async fn checkout_with_a_note_over_500_characters_returns_422_and_keeps_the_cart(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 1).await?;
    let long = "ä".repeat(501);
    let resp = ctx
        .post("/api/orders", json!({"note": long}))
        .token(&token)
        .idempotency_key("n1")
        .await?;
    resp.expect_error(422, "invalid")?;
    ensure!(
        ctx.cart(&token).await?.array_at("items")?.len() == 1,
        "the cart was consumed"
    );
    let limit = "ä".repeat(500);
    let resp = ctx
        .post("/api/orders", json!({"note": limit}))
        .token(&token)
        .idempotency_key("n2")
        .await?;
    ensure!(resp.expect(201)?.str_at("note")? == limit, "{}", resp.text);
    Ok(())
}

async fn checkout_with_unknown_fields_or_wrong_types_returns_422(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 1).await?;
    for (index, body) in [
        json!({"total_cents": 1}),
        json!({"note": 5}),
        json!({"note": ["a"]}),
        json!([]),
        json!("{}"),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("bad-{index}");
        let resp = ctx
            .post("/api/orders", body)
            .token(&token)
            .idempotency_key(&key)
            .await?;
        resp.expect_error(422, "invalid")?;
    }
    ensure!(
        ctx.orders(&token).await?.is_empty(),
        "an order was created from a bad body"
    );
    Ok(())
}

async fn checkout_without_stock_returns_409_and_changes_nothing(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 3, 2).await?;
    let cart = ctx.put_in_cart(&token, 6, 11).await?;
    ctx.checkout(&token, "too-many")
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        ctx.cart(&token).await? == cart,
        "the cart changed after a refused checkout"
    );
    ensure!(
        ctx.orders(&token).await?.is_empty(),
        "an order exists after a 409"
    );
    let audit = ctx.audit().await?;
    for product_id in [3, 6] {
        let row = stock_row(&audit, product_id)?;
        ensure!(
            row.i64_at("available")? == 10
                && row.i64_at("reserved")? == 0
                && row.i64_at("sold")? == 0,
            "stock moved after a 409: {row}"
        );
    }
    ensure!(
        audit.array_at("charges")?.is_empty(),
        "charged after a 409: {audit}"
    );
    let held = audit
        .array_at("reservations")?
        .iter()
        .filter(|reservation| reservation.str_at("state").ok() == Some("held"))
        .count();
    ensure!(
        held == 0,
        "a reservation is still held after a 409: {audit}"
    );
    // Exactly the remaining stock is fine.
    ctx.put_in_cart(&token, 6, 10).await?;
    ctx.checkout(&token, "just-enough").await?.expect(201)?;
    Ok(())
}

async fn the_last_unit_raced_by_several_users_is_sold_exactly_once(ctx: Ctx) -> Result<()> {
    ctx.reset(json!({"products": 30, "stock": 1, "users": 5, "seed": 7}))
        .await?;
    let mut tokens = Vec::new();
    for index in 1..=5 {
        let token = ctx.login_seeded(index).await?;
        ctx.put_in_cart(&token, 8, 1).await?;
        tokens.push(token);
    }
    let answers = all(tokens
        .iter()
        .map(|token| ctx.checkout(token, "last-unit"))
        .collect())
    .await?;
    let created = answers.iter().filter(|resp| resp.status == 201).count();
    ensure!(
        created == 1,
        "expected exactly one 201, got statuses {:?}",
        statuses(&answers)
    );
    for resp in answers.iter().filter(|resp| resp.status != 201) {
        resp.expect_error(409, "conflict")?;
    }
    let audit = ctx.audit().await?;
    let row = stock_row(&audit, 8)?;
    ensure!(
        row.i64_at("sold")? == 1 && row.i64_at("available")? == 0,
        "oversold: {row}"
    );
    ensure!(row.i64_at("reserved")? == 0, "units left reserved: {row}");
    ensure!(audit.array_at("charges")?.len() == 1, "charges: {audit}");
    Ok(())
}

async fn orders_are_listed_newest_first_and_only_to_their_owner(ctx: Ctx) -> Result<()> {
    let alice = ctx.login_seeded(1).await?;
    let bob = ctx.login_seeded(2).await?;
    let mut alice_ids = Vec::new();
    for (index, product_id) in [3, 5, 7].into_iter().enumerate() {
        ctx.put_in_cart(&alice, product_id, 1).await?;
        let order = ctx.checkout(&alice, &format!("a-{index}")).await?;
        alice_ids.push(order.expect(201)?.i64_at("id")?);
    }
    ctx.put_in_cart(&bob, 4, 1).await?;
    let bob_id = ctx.checkout(&bob, "b-0").await?.expect(201)?.i64_at("id")?;
    let listed: Vec<i64> = ids(&ctx.orders(&alice).await?)?;
    alice_ids.reverse();
    ensure!(
        listed == alice_ids,
        "expected newest first {alice_ids:?}, got {listed:?}"
    );
    ensure!(
        ids(&ctx.orders(&bob).await?)? == [bob_id],
        "bob sees others' orders"
    );
    let newcomer = ctx.register_user().await?;
    ensure!(
        ctx.orders(&newcomer.token).await?.is_empty(),
        "a new user sees orders"
    );
    Ok(())
}

async fn reading_an_own_order_returns_what_checkout_returned(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 12, 2).await?;
    let created = ctx.checkout(&token, "read-me").await?.expect(201)?.clone();
    let id = created.i64_at("id")?;
    let read = ctx.get(&format!("/api/orders/{id}")).token(&token).await?;
    ensure!(
        read.expect(200)? == &created,
        "GET differs from checkout:\n{created}\n{}",
        read.text
    );
    let listed = ctx.orders(&token).await?;
    ensure!(
        listed.first() == Some(&created),
        "the list shows another order: {listed:?}"
    );
    Ok(())
}

async fn reading_another_users_order_returns_404(ctx: Ctx) -> Result<()> {
    let alice = ctx.login_seeded(1).await?;
    let bob = ctx.login_seeded(2).await?;
    ctx.put_in_cart(&alice, 3, 1).await?;
    let id = ctx
        .checkout(&alice, "mine")
        .await?
        .expect(201)?
        .i64_at("id")?;
    let path = format!("/api/orders/{id}");
    ctx.get(&path)
        .token(&bob)
        .await?
        .expect_error(404, "not_found")?;
    ctx.get(&path).token(&alice).await?.expect(200)?;
    Ok(())
}

async fn reading_an_unknown_order_returns_404_and_a_non_numeric_id_400(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    for id in ["1", "999999", "0", "-3"] {
        ctx.get(&format!("/api/orders/{id}"))
            .token(&token)
            .await?
            .expect_error(404, "not_found")?;
    }
    for id in ["abc", "1.5", "99999999999999999999999"] {
        let resp = ctx.get(&format!("/api/orders/{id}")).token(&token).await?;
        resp.expect_error(400, "bad_request")?;
    }
    Ok(())
}

async fn orders_need_a_token(ctx: Ctx) -> Result<()> {
    ctx.get("/api/orders")
        .await?
        .expect_error(401, "unauthenticated")?;
    ctx.get("/api/orders/1")
        .await?
        .expect_error(401, "unauthenticated")?;
    let resp = ctx
        .post("/api/orders", json!({}))
        .idempotency_key("anon")
        .await?;
    resp.expect_error(401, "unauthenticated")?;
    let forged = ctx.forged_token(ctx.seeded_user_id(1).await?)?;
    ctx.get("/api/orders")
        .token(&forged)
        .await?
        .expect_error(401, "unauthenticated")?;
    Ok(())
}

async fn the_audit_is_consistent_after_a_checkout(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(3).await?;
    let user_id = ctx.seeded_user_id(3).await?;
    ctx.put_in_cart(&token, 5, 4).await?;
    ctx.put_in_cart(&token, 6, 1).await?;
    let order = ctx.checkout(&token, "audited").await?.expect(201)?.clone();
    let audit = ctx.audit().await?;
    audit.i64_at("taken_at_ms")?;
    let stock = audit.array_at("stock")?;
    ensure!(
        stock.len() == 30,
        "one stock row per product: {} rows",
        stock.len()
    );
    for row in stock {
        let (initial, restocked) = (row.i64_at("initial")?, row.i64_at("restocked")?);
        let (available, reserved, sold) = (
            row.i64_at("available")?,
            row.i64_at("reserved")?,
            row.i64_at("sold")?,
        );
        ensure!(initial == 10, "initial stock is 10: {row}");
        ensure!(
            initial + restocked == available + reserved + sold,
            "stock not conserved: {row}"
        );
    }
    for (product_id, sold) in [(5, 4), (6, 1), (7, 0)] {
        let row = stock_row(&audit, product_id)?;
        ensure!(
            row.i64_at("sold")? == sold && row.i64_at("reserved")? == 0,
            "{row}"
        );
    }
    let orders = audit.array_at("orders")?;
    ensure!(orders.len() == 1, "{audit}");
    let audited = &orders[0];
    ensure!(audited.i64_at("id")? == order.i64_at("id")?, "{audited}");
    ensure!(audited.i64_at("user_id")? == user_id, "{audited}");
    ensure!(audited.str_at("status")? == "confirmed", "{audited}");
    ensure!(audited.str_at("idempotency_key")? == "audited", "{audited}");
    ensure!(
        audited.i64_at("total_cents")? == order.i64_at("total_cents")?,
        "{audited}"
    );
    ensure!(
        audited.field("lines")? == order.field("lines")?,
        "lines differ: {audited}"
    );
    let charge_id = audited.str_at("charge_id")?;
    let charge = audit
        .array_at("charges")?
        .iter()
        .find(|charge| charge.str_at("id").ok() == Some(charge_id))
        .with_context(|| format!("the order's charge {charge_id} is not in the audit"))?;
    ensure!(
        charge.i64_at("amount_cents")? == order.i64_at("total_cents")?,
        "charge ≠ total: {charge}"
    );
    ensure!(charge.i64_at("user_id")? == user_id, "{charge}");
    let reservation_id = audited.str_at("reservation_id")?;
    let reservation = audit
        .array_at("reservations")?
        .iter()
        .find(|reservation| reservation.str_at("id").ok() == Some(reservation_id))
        .with_context(|| format!("the order's reservation {reservation_id} is not in the audit"))?;
    ensure!(reservation.str_at("state")? == "committed", "{reservation}");
    ensure!(audit.array_at("refunds")?.is_empty(), "{audit}");
    Ok(())
}

fn statuses(answers: &[crate::Resp]) -> Vec<u16> {
    answers.iter().map(|resp| resp.status).collect()
}

fn ids(orders: &[Value]) -> Result<Vec<i64>> {
    orders.iter().map(|order| order.i64_at("id")).collect()
}

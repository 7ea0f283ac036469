//! `cart`: setting and removing lines, pricing, validation, privacy, and bearer-token
//! authentication (the cart is the simplest endpoint that needs a token).

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use crate::{Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![cart:
        a_new_user_has_an_empty_cart,
        putting_an_item_sets_its_quantity_and_prices_it_at_the_catalog_price,
        putting_the_same_item_again_replaces_the_quantity_instead_of_adding,
        cart_items_are_ordered_by_product_id_and_the_total_is_their_sum,
        quantities_outside_1_to_100_return_422_and_leave_the_cart_unchanged,
        non_integer_quantities_return_422,
        putting_an_unknown_product_returns_404,
        cart_paths_with_a_non_numeric_product_id_return_400,
        removing_an_item_returns_the_cart_without_it,
        removing_an_item_that_is_not_in_the_cart_returns_404,
        each_user_sees_only_their_own_cart,
        cart_without_a_token_returns_401,
        cart_with_a_malformed_token_returns_401,
        cart_with_a_forged_token_returns_401,
        cart_with_an_expired_token_returns_401,
        cart_put_with_unknown_or_missing_fields_returns_422,
    ]
}

async fn a_new_user_has_an_empty_cart(ctx: Ctx) -> Result<()> {
    let user = ctx.register_user().await?;
    let cart = ctx.cart(&user.token).await?;
    ensure!(cart.array_at("items")?.is_empty(), "{cart}");
    ensure!(cart.i64_at("total_cents")? == 0, "{cart}");
    Ok(())
}

async fn putting_an_item_sets_its_quantity_and_prices_it_at_the_catalog_price(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    let product = ctx.product(4).await?;
    let cart = ctx.put_in_cart(&token, 4, 3).await?;
    let expected_line = json!({
        "product_id": 4,
        "quantity": 3,
        "price_cents": product.i64_at("price_cents")?,
        "name": product.str_at("name")?,
    });
    let items = cart.array_at("items")?;
    ensure!(items.len() == 1, "one line expected: {cart}");
    for field in ["product_id", "quantity", "price_cents", "name"] {
        ensure!(
            items[0].field(field)? == &expected_line[field],
            "{field}: {cart}"
        );
    }
    ensure!(
        cart.i64_at("total_cents")? == 3 * product.i64_at("price_cents")?,
        "{cart}"
    );
    // GET shows the same cart the PUT answered with.
    ensure!(
        ctx.cart(&token).await? == cart,
        "GET /api/cart differs from the PUT answer"
    );
    Ok(())
}

async fn putting_the_same_item_again_replaces_the_quantity_instead_of_adding(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 2, 5).await?;
    let cart = ctx.put_in_cart(&token, 2, 2).await?;
    let items = cart.array_at("items")?;
    ensure!(
        items.len() == 1 && items[0].i64_at("quantity")? == 2,
        "set, not add: {cart}"
    );
    Ok(())
}

async fn cart_items_are_ordered_by_product_id_and_the_total_is_their_sum(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(2).await?;
    for (product_id, quantity) in [(9, 1), (3, 4), (17, 2)] {
        ctx.put_in_cart(&token, product_id, quantity).await?;
    }
    let cart = ctx.cart(&token).await?;
    let items = cart.array_at("items")?;
    let ids: Vec<i64> = items
        .iter()
        .map(|item| item.i64_at("product_id"))
        .collect::<Result<_>>()?;
    ensure!(ids == [3, 9, 17], "not ordered by product id: {cart}");
    let mut expected_total = 0;
    for item in items {
        let price = ctx
            .product(item.i64_at("product_id")?)
            .await?
            .i64_at("price_cents")?;
        ensure!(
            item.i64_at("price_cents")? == price,
            "unit price differs: {item}"
        );
        expected_total += price * item.i64_at("quantity")?;
    }
    ensure!(
        cart.i64_at("total_cents")? == expected_total,
        "total is not the sum: {cart}"
    );
    Ok(())
}

async fn quantities_outside_1_to_100_return_422_and_leave_the_cart_unchanged(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    let before = ctx.put_in_cart(&token, 5, 2).await?;
    for quantity in [
        json!(0),
        json!(-1),
        json!(101),
        json!(1_000_000),
        json!(i64::MIN),
    ] {
        let resp = ctx
            .put("/api/cart/items/5", json!({"quantity": quantity}))
            .token(&token)
            .await?;
        resp.expect_error(422, "invalid")?;
        let resp = ctx
            .put("/api/cart/items/6", json!({"quantity": quantity}))
            .token(&token)
            .await?;
        resp.expect_error(422, "invalid")?;
    }
    ensure!(
        ctx.cart(&token).await? == before,
        "a refused quantity changed the cart"
    );
    let cart = ctx.put_in_cart(&token, 5, 100).await?;
    ensure!(
        cart.array_at("items")?[0].i64_at("quantity")? == 100,
        "100 is allowed: {cart}"
    );
    Ok(())
}

async fn non_integer_quantities_return_422(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    for quantity in [
        json!(1e30),
        json!(2.5),
        json!("3"),
        json!(null),
        json!([1]),
        json!(true),
    ] {
        let resp = ctx
            .put("/api/cart/items/5", json!({"quantity": quantity}))
            .token(&token)
            .await?;
        resp.expect_error(422, "invalid")?;
    }
    // A number too large for any integer type, sent as raw text.
    let resp = ctx
        .request(reqwest::Method::PUT, "/api/cart/items/5")
        .token(&token)
        .raw_body(
            r#"{"quantity": 99999999999999999999999999}"#,
            Some("application/json"),
        )
        .await?;
    resp.expect_error(422, "invalid")?;
    ensure!(
        ctx.cart(&token).await?.array_at("items")?.is_empty(),
        "the cart changed"
    );
    Ok(())
}

async fn putting_an_unknown_product_returns_404(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    for id in [31_i64, 0, -5, 4_000_000_000] {
        let resp = ctx
            .put(&format!("/api/cart/items/{id}"), json!({"quantity": 1}))
            .token(&token)
            .await?;
        resp.expect_error(404, "not_found")?;
    }
    ensure!(
        ctx.cart(&token).await?.array_at("items")?.is_empty(),
        "the cart changed"
    );
    Ok(())
}

async fn cart_paths_with_a_non_numeric_product_id_return_400(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    for id in ["abc", "1.0", "99999999999999999999999"] {
        let path = format!("/api/cart/items/{id}");
        ctx.put(&path, json!({"quantity": 1}))
            .token(&token)
            .await?
            .expect_error(400, "bad_request")?;
        ctx.delete(&path)
            .token(&token)
            .await?
            .expect_error(400, "bad_request")?;
    }
    Ok(())
}

async fn removing_an_item_returns_the_cart_without_it(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 7, 1).await?;
    let kept = ctx.put_in_cart(&token, 8, 2).await?;
    let resp = ctx.delete("/api/cart/items/7").token(&token).await?;
    let cart = resp.expect(200)?;
    let items = cart.array_at("items")?;
    ensure!(
        items.len() == 1 && items[0].i64_at("product_id")? == 8,
        "{cart}"
    );
    let price_8 = kept.array_at("items")?[1].i64_at("price_cents")?;
    ensure!(
        cart.i64_at("total_cents")? == 2 * price_8,
        "total not updated: {cart}"
    );
    ensure!(
        &ctx.cart(&token).await? == cart,
        "GET differs from the DELETE answer"
    );
    Ok(())
}

async fn removing_an_item_that_is_not_in_the_cart_returns_404(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.delete("/api/cart/items/7")
        .token(&token)
        .await?
        .expect_error(404, "not_found")?;
    ctx.put_in_cart(&token, 7, 1).await?;
    ctx.delete("/api/cart/items/7")
        .token(&token)
        .await?
        .expect(200)?;
    ctx.delete("/api/cart/items/7")
        .token(&token)
        .await?
        .expect_error(404, "not_found")?;
    ctx.delete("/api/cart/items/9999")
        .token(&token)
        .await?
        .expect_error(404, "not_found")?;
    Ok(())
}

async fn each_user_sees_only_their_own_cart(ctx: Ctx) -> Result<()> {
    let alice = ctx.login_seeded(1).await?;
    let bob = ctx.login_seeded(2).await?;
    ctx.put_in_cart(&alice, 1, 1).await?;
    ctx.put_in_cart(&bob, 2, 2).await?;
    let alice_cart = ctx.cart(&alice).await?;
    let bob_cart = ctx.cart(&bob).await?;
    ensure!(product_ids(&alice_cart)? == [1], "alice sees {alice_cart}");
    ensure!(product_ids(&bob_cart)? == [2], "bob sees {bob_cart}");
    // Bob cannot remove Alice's line either.
    ctx.delete("/api/cart/items/1")
        .token(&bob)
        .await?
        .expect_error(404, "not_found")?;
    ensure!(
        product_ids(&ctx.cart(&alice).await?)? == [1],
        "bob changed alice's cart"
    );
    Ok(())
}

async fn cart_without_a_token_returns_401(ctx: Ctx) -> Result<()> {
    ctx.get("/api/cart")
        .await?
        .expect_error(401, "unauthenticated")?;
    ctx.put("/api/cart/items/1", json!({"quantity": 1}))
        .await?
        .expect_error(401, "unauthenticated")?;
    ctx.delete("/api/cart/items/1")
        .await?
        .expect_error(401, "unauthenticated")?;
    Ok(())
}

async fn cart_with_a_malformed_token_returns_401(ctx: Ctx) -> Result<()> {
    let real = ctx.login_seeded(1).await?;
    for authorization in [
        "Bearer garbage".to_owned(),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        "Basic dXNlcjE6c2hvcGxhYi03".to_owned(),
        real.clone(),
        format!("Bearer {real}x"),
        format!("Bearer {}", "a.b.c"),
    ] {
        let resp = ctx
            .get("/api/cart")
            .header("authorization", &authorization)
            .await?;
        resp.expect_error(401, "unauthenticated")?;
    }
    Ok(())
}

async fn cart_with_a_forged_token_returns_401(ctx: Ctx) -> Result<()> {
    let user_id = ctx.seeded_user_id(1).await?;
    let forged = ctx.forged_token(user_id)?;
    ctx.get("/api/cart")
        .token(&forged)
        .await?
        .expect_error(401, "unauthenticated")?;
    Ok(())
}

async fn cart_with_an_expired_token_returns_401(ctx: Ctx) -> Result<()> {
    let user_id = ctx.seeded_user_id(1).await?;
    let expired = ctx.expired_token(user_id)?;
    ctx.get("/api/cart")
        .token(&expired)
        .await?
        .expect_error(401, "unauthenticated")?;
    // The same secret with a live expiry works, so the 401 above is about the expiry.
    let keys = domain::tokens::TokenKeys::new(ctx.target().token_secret.as_bytes(), 600);
    let live = keys.issue(user_id)?.token;
    ctx.get("/api/cart").token(&live).await?.expect(200)?;
    Ok(())
}

async fn cart_put_with_unknown_or_missing_fields_returns_422(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    for body in [
        json!({}),
        json!({"quantity": 1, "price_cents": 1}),
        json!({"qty": 1}),
        json!([1]),
    ] {
        ctx.put("/api/cart/items/1", body)
            .token(&token)
            .await?
            .expect_error(422, "invalid")?;
    }
    Ok(())
}

fn product_ids(cart: &Value) -> Result<Vec<i64>> {
    cart.array_at("items")?
        .iter()
        .map(|item| item.i64_at("product_id"))
        .collect()
}

//! The admin API: who may call it, what `reset` does and refuses, and the audit snapshot of
//! a freshly seeded shop.

use anyhow::{Result, ensure};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Call, Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![admin:
        reset_returns_its_summary_and_seeds_what_it_says,
        admin_endpoints_without_a_token_return_401,
        admin_endpoints_with_a_wrong_token_return_401,
        admin_endpoints_refuse_a_user_token_with_401,
        admin_endpoints_refuse_the_metrics_token_and_change_nothing,
        reset_with_zero_products_or_bad_fields_returns_422,
        reset_wipes_registered_users_carts_and_orders,
        the_audit_of_a_fresh_shop_shows_initial_stock_and_nothing_else,
    ]
}

async fn reset_returns_its_summary_and_seeds_what_it_says(ctx: Ctx) -> Result<()> {
    let summary = ctx
        .reset(json!({"products": 12, "stock": 3, "users": 2, "seed": 11}))
        .await?;
    ensure!(
        summary.i64_at("products")? == 12 && summary.i64_at("stock")? == 3,
        "{summary}"
    );
    ensure!(
        summary.i64_at("users")? == 2 && summary.i64_at("seed")? == 11,
        "{summary}"
    );
    ensure!(
        summary.str_at("user_password")? == "shoplab-11",
        "{summary}"
    );
    let page = ctx.get("/api/products").await?;
    ensure!(page.expect(200)?.i64_at("total")? == 12, "{}", page.text);
    ctx.login("user2@shoplab.test", "shoplab-11").await?;
    for (email, password) in [
        ("user3@shoplab.test", "shoplab-11"),
        ("user1@shoplab.test", "shoplab-7"),
    ] {
        let resp = ctx
            .post(
                "/api/sessions",
                json!({"email": email, "password": password}),
            )
            .await?;
        resp.expect_error(401, "unauthenticated")?;
    }
    let audit = ctx.audit().await?;
    ensure!(
        audit
            .array_at("stock")?
            .iter()
            .all(|row| row.i64_at("available").ok() == Some(3)),
        "{audit}"
    );
    Ok(())
}

async fn admin_endpoints_without_a_token_return_401(ctx: Ctx) -> Result<()> {
    for (method, path, body) in admin_calls() {
        let resp = admin_call(&ctx, method, path, body.as_ref()).await?;
        resp.expect_error(401, "unauthenticated")?;
    }
    ensure!(
        ctx.get("/api/products").await?.json.i64_at("total")? == 30,
        "a reset went through"
    );
    Ok(())
}

async fn admin_endpoints_with_a_wrong_token_return_401(ctx: Ctx) -> Result<()> {
    let wrong = format!("{}x", ctx.target().admin_token);
    for (method, path, body) in admin_calls() {
        for authorization in [format!("Bearer {wrong}"), ctx.target().admin_token.clone()] {
            let call = admin_call(&ctx, method.clone(), path, body.as_ref());
            let resp = call.header("authorization", &authorization).await?;
            resp.expect_error(401, "unauthenticated")?;
        }
    }
    ensure!(
        ctx.get("/api/products").await?.json.i64_at("total")? == 30,
        "a reset went through"
    );
    Ok(())
}

async fn admin_endpoints_refuse_a_user_token_with_401(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    for (method, path, body) in admin_calls() {
        let resp = admin_call(&ctx, method, path, body.as_ref())
            .token(&token)
            .await?;
        resp.expect_error(401, "unauthenticated")?;
    }
    Ok(())
}

/// The metrics token is a scraper's: it reads `/metrics` and may not reset the shop, read
/// the audit or touch a fault.
async fn admin_endpoints_refuse_the_metrics_token_and_change_nothing(ctx: Ctx) -> Result<()> {
    let metrics_token = ctx.target().metrics_token.clone();
    for (method, path, body) in admin_calls() {
        let resp = admin_call(&ctx, method.clone(), path, body.as_ref())
            .token(&metrics_token)
            .await?;
        ensure!(
            matches!(resp.status, 401 | 403),
            "{method} {path} with the metrics token answered {}: {}",
            resp.status,
            resp.text
        );
        ensure!(
            resp.json.pointer("/error/code").is_some(),
            "{method} {path}: no error body in {}",
            resp.text
        );
    }
    ensure!(
        ctx.get("/api/products").await?.json.i64_at("total")? == 30,
        "a reset went through"
    );
    let faults = ctx.get("/admin/faults").admin().await?;
    ensure!(
        faults.expect(200)?.array_at("items")?.is_empty(),
        "a fault was injected: {}",
        faults.text
    );
    Ok(())
}

async fn reset_with_zero_products_or_bad_fields_returns_422(ctx: Ctx) -> Result<()> {
    for body in [
        json!({"products": 0}),
        json!({"products": -1}),
        json!({"stock": -1}),
        json!({"products": "ten"}),
        json!({"seed": 1.5}),
        json!({"colour": "red"}),
    ] {
        let resp = ctx.post("/admin/reset", body).admin().await?;
        resp.expect_error(422, "invalid")?;
    }
    ensure!(
        ctx.get("/api/products").await?.json.i64_at("total")? == 30,
        "a refused reset applied"
    );
    Ok(())
}

async fn reset_wipes_registered_users_carts_and_orders(ctx: Ctx) -> Result<()> {
    let user = ctx.register_user().await?;
    let seeded = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&seeded, 1, 1).await?;
    ctx.checkout(&seeded, "before-reset").await?.expect(201)?;
    ctx.put_in_cart(&seeded, 2, 1).await?;
    ctx.reset(crate::default_reset()).await?;
    let resp = ctx
        .post(
            "/api/sessions",
            json!({"email": user.email, "password": user.password}),
        )
        .await?;
    resp.expect_error(401, "unauthenticated")?;
    let seeded = ctx.login_seeded(1).await?;
    ensure!(
        ctx.orders(&seeded).await?.is_empty(),
        "orders survived a reset"
    );
    ensure!(
        ctx.cart(&seeded).await?.array_at("items")?.is_empty(),
        "the cart survived a reset"
    );
    let audit = ctx.audit().await?;
    ensure!(
        audit.array_at("charges")?.is_empty() && audit.array_at("orders")?.is_empty(),
        "{audit}"
    );
    Ok(())
}

async fn the_audit_of_a_fresh_shop_shows_initial_stock_and_nothing_else(ctx: Ctx) -> Result<()> {
    let audit = ctx.audit().await?;
    let stock = audit.array_at("stock")?;
    let ids: Vec<i64> = stock
        .iter()
        .map(|row| row.i64_at("product_id"))
        .collect::<Result<_>>()?;
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    ensure!(
        sorted == (1..=30).collect::<Vec<_>>(),
        "stock rows for {ids:?}"
    );
    for row in stock {
        let fresh = [
            ("initial", 10),
            ("restocked", 0),
            ("available", 10),
            ("reserved", 0),
            ("sold", 0),
        ];
        for (field, expected) in fresh {
            ensure!(
                row.i64_at(field)? == expected,
                "{field} should be {expected}: {row}"
            );
        }
    }
    for list in ["reservations", "orders", "charges", "refunds"] {
        ensure!(
            audit.array_at(list)?.is_empty(),
            "{list} not empty after a reset: {audit}"
        );
    }
    Ok(())
}

/// Every admin endpoint, with a body that would be accepted from the admin.
fn admin_calls() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::POST, "/admin/reset", Some(json!({"products": 1}))),
        (Method::GET, "/admin/audit", None),
        (Method::GET, "/admin/faults", None),
        (
            Method::POST,
            "/admin/faults",
            Some(json!({"context": "catalog", "kind": "errors"})),
        ),
        (Method::DELETE, "/admin/faults", None),
    ]
}

fn admin_call(ctx: &Ctx, method: Method, path: &str, body: Option<&Value>) -> Call {
    let call = ctx.request(method, path);
    match body {
        Some(body) => call.json(body),
        None => call,
    }
}

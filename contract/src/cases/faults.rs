//! In-process faults through the admin API: switching them on, the documented degraded
//! answers, and recovery once they are cleared or expire. (`abort`, `cpu_hog` and `leak`
//! are left to the harness's fault experiments: they take the process or the machine.)

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use serde_json::{Value, json};

use crate::client::stock_row;
use crate::{Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![faults:
        an_injected_fault_is_listed_until_faults_are_cleared,
        unknown_contexts_kinds_or_bad_params_return_422,
        an_out_of_range_parameter_is_422_naming_the_parameter_and_its_range,
        a_fault_the_lab_realizes_itself_is_422_from_the_admin_api,
        parameters_left_out_take_the_catalogue_defaults,
        recommendation_errors_leave_the_product_page_with_an_empty_list,
        inventory_errors_make_availability_unknown,
        inventory_errors_fail_checkout_with_503_and_nothing_reserved_or_charged,
        catalog_errors_fail_the_product_list_with_503,
        clearing_faults_heals_every_degraded_answer,
        a_fault_with_a_duration_switches_itself_off,
        a_latency_fault_slows_its_context_down,
    ]
}

async fn an_injected_fault_is_listed_until_faults_are_cleared(ctx: Ctx) -> Result<()> {
    let body = json!({"context": "recommendations", "kind": "errors", "params": {"rate": 0.5}, "duration_ms": 600_000});
    let resp = ctx.post("/admin/faults", body).admin().await?;
    let fault = resp.expect(201)?;
    fault.i64_at("id")?;
    ensure!(
        fault.str_at("context")? == "recommendations" && fault.str_at("kind")? == "errors",
        "{fault}"
    );
    ensure!(
        fault.field("rate")?.as_f64() == Some(0.5),
        "params are flattened into the fault: {fault}"
    );
    let started = fault.i64_at("started_at_ms")?;
    ensure!(
        fault.i64_at("expires_at_ms")? == started + 600_000,
        "{fault}"
    );
    let listed = ctx.get("/admin/faults").admin().await?;
    let items = listed.expect(200)?.array_at("items")?;
    ensure!(
        items.len() == 1 && items[0].i64_at("id")? == fault.i64_at("id")?,
        "{}",
        listed.text
    );
    let cleared = ctx.delete("/admin/faults").admin().await?;
    ensure!(
        cleared.expect(200)?.i64_at("cleared")? == 1,
        "{}",
        cleared.text
    );
    ensure!(
        active_faults(&ctx).await?.is_empty(),
        "a cleared fault is still listed"
    );
    let cleared = ctx.delete("/admin/faults").admin().await?;
    ensure!(
        cleared.expect(200)?.i64_at("cleared")? == 0,
        "{}",
        cleared.text
    );
    Ok(())
}

async fn unknown_contexts_kinds_or_bad_params_return_422(ctx: Ctx) -> Result<()> {
    for body in [
        json!({"context": "shipping", "kind": "errors"}),
        json!({"context": "catalog", "kind": "meteor"}),
        json!({"context": "catalog", "kind": "errors", "params": {"rate": 1.5}}),
        json!({"context": "catalog", "kind": "errors", "params": {"rate": 0}}),
        json!({"context": "catalog", "kind": "errors", "params": {"rate": "all"}}),
        json!({"context": "catalog", "kind": "latency", "params": {"ms": -5}}),
        json!({"context": "catalog", "kind": "latency", "params": [1]}),
        json!({"context": "catalog", "kind": "cpu_hog", "params": {"threads": 99}}),
        json!({"context": "catalog", "kind": "errors", "duration_ms": 0}),
        json!({"context": "catalog", "kind": "errors", "colour": "red"}),
        json!({"kind": "errors"}),
    ] {
        let resp = ctx.post("/admin/faults", body).admin().await?;
        resp.expect_error(422, "invalid")?;
    }
    ensure!(
        active_faults(&ctx).await?.is_empty(),
        "a refused fault was switched on"
    );
    ctx.get("/api/products").await?.expect(200)?;
    Ok(())
}

/// The message is the catalogue's (`domain::faults`): an operator or the workshop page shows
/// it as it is, so it must say which parameter and which range.
async fn an_out_of_range_parameter_is_422_naming_the_parameter_and_its_range(
    ctx: Ctx,
) -> Result<()> {
    for (body, expected) in [
        (
            json!({"context": "catalog", "kind": "latency", "params": {"ms": 70_000}}),
            "latency params.ms must be a whole number between 1 and 60000 (ms), got 70000",
        ),
        (
            json!({"context": "catalog", "kind": "errors", "params": {"rate": 1.5}}),
            "errors params.rate must be a number between 0.01 and 1 (fraction), got 1.5",
        ),
        (
            json!({"context": "catalog", "kind": "cpu_hog", "params": {"threads": 0}}),
            "cpu_hog params.threads must be a whole number between 1 and 16 (threads), got 0",
        ),
        (
            json!({"context": "catalog", "kind": "latency", "params": {"jitter": 5}}),
            "latency has no parameter \"jitter\"; its parameters: ms",
        ),
    ] {
        let resp = ctx.post("/admin/faults", body).admin().await?;
        resp.expect_error(422, "invalid")?;
        let message = resp.json.field("error")?.str_at("message")?.to_owned();
        ensure!(
            message == expected,
            "expected {expected:?}, got {message:?}"
        );
    }
    ensure!(
        active_faults(&ctx).await?.is_empty(),
        "a refused fault was switched on"
    );
    Ok(())
}

async fn a_fault_the_lab_realizes_itself_is_422_from_the_admin_api(ctx: Ctx) -> Result<()> {
    for kind in ["kill", "net_latency", "cpu_limit", "db_down"] {
        let body = json!({"context": "catalog", "kind": kind});
        let resp = ctx.post("/admin/faults", body).admin().await?;
        resp.expect_error(422, "invalid")?;
        let message = resp.json.field("error")?.str_at("message")?.to_owned();
        ensure!(
            message.contains(kind)
                && message.contains("latency, errors, hang, abort, cpu_hog, leak"),
            "{kind}: {message}"
        );
    }
    ensure!(
        active_faults(&ctx).await?.is_empty(),
        "a refused fault was switched on"
    );
    Ok(())
}

async fn parameters_left_out_take_the_catalogue_defaults(ctx: Ctx) -> Result<()> {
    let body = json!({"context": "recommendations", "kind": "errors", "duration_ms": 600_000});
    let resp = ctx.post("/admin/faults", body).admin().await?;
    let fault = resp.expect(201)?;
    ensure!(
        fault.field("rate")?.as_f64() == Some(0.5),
        "the default error rate is half the calls: {fault}"
    );
    clear(&ctx).await?;
    Ok(())
}

async fn recommendation_errors_leave_the_product_page_with_an_empty_list(ctx: Ctx) -> Result<()> {
    ensure!(
        !ctx.product(1)
            .await?
            .array_at("recommendations")?
            .is_empty(),
        "no baseline list"
    );
    inject(&ctx, "recommendations", "errors", json!({"rate": 1.0})).await?;
    let page = ctx.product(1).await?;
    ensure!(
        page.array_at("recommendations")?.is_empty(),
        "recommendations survived: {page}"
    );
    ensure!(
        page.str_at("availability")? == "in_stock",
        "more than recommendations broke: {page}"
    );
    ensure!(page.i64_at("id")? == 1, "{page}");
    Ok(())
}

async fn inventory_errors_make_availability_unknown(ctx: Ctx) -> Result<()> {
    inject(&ctx, "inventory", "errors", json!({"rate": 1.0})).await?;
    let page = ctx.product(2).await?;
    ensure!(page.str_at("availability")? == "unknown", "{page}");
    ensure!(
        page.str_at("name")?.ends_with(" 2"),
        "the product itself is still shown: {page}"
    );
    ctx.get("/api/products").await?.expect(200)?;
    Ok(())
}

async fn inventory_errors_fail_checkout_with_503_and_nothing_reserved_or_charged(
    ctx: Ctx,
) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 3, 2).await?;
    inject(&ctx, "inventory", "errors", json!({"rate": 1.0})).await?;
    ctx.checkout(&token, "during-fault")
        .await?
        .expect_error(503, "unavailable")?;
    let audit = ctx.audit().await?;
    let row = stock_row(&audit, 3)?;
    ensure!(
        row.i64_at("available")? == 10 && row.i64_at("reserved")? == 0,
        "held: {row}"
    );
    ensure!(
        audit.array_at("charges")?.is_empty(),
        "charged during the fault: {audit}"
    );
    ensure!(
        ctx.cart(&token).await?.array_at("items")?.len() == 1,
        "the cart was lost"
    );
    clear(&ctx).await?;
    // A 503 is "maybe applied": retrying the same key must now complete the order once.
    ctx.checkout(&token, "during-fault").await?.expect(201)?;
    ensure!(
        ctx.orders(&token).await?.len() == 1,
        "not exactly one order after the retry"
    );
    Ok(())
}

async fn catalog_errors_fail_the_product_list_with_503(ctx: Ctx) -> Result<()> {
    inject(&ctx, "catalog", "errors", json!({"rate": 1.0})).await?;
    ctx.get("/api/products")
        .await?
        .expect_error(503, "unavailable")?;
    Ok(())
}

async fn clearing_faults_heals_every_degraded_answer(ctx: Ctx) -> Result<()> {
    let token = ctx.login_seeded(1).await?;
    ctx.put_in_cart(&token, 4, 1).await?;
    for context in ["recommendations", "inventory", "catalog"] {
        inject(&ctx, context, "errors", json!({"rate": 1.0})).await?;
    }
    ctx.get("/api/products")
        .await?
        .expect_error(503, "unavailable")?;
    let cleared = ctx.delete("/admin/faults").admin().await?;
    ensure!(
        cleared.expect(200)?.i64_at("cleared")? == 3,
        "{}",
        cleared.text
    );
    ctx.get("/api/products").await?.expect(200)?;
    let page = ctx.product(4).await?;
    ensure!(
        page.str_at("availability")? == "in_stock",
        "availability did not heal: {page}"
    );
    ensure!(
        !page.array_at("recommendations")?.is_empty(),
        "recommendations did not heal"
    );
    ctx.checkout(&token, "after-heal").await?.expect(201)?;
    Ok(())
}

async fn a_fault_with_a_duration_switches_itself_off(ctx: Ctx) -> Result<()> {
    let body = json!({"context": "catalog", "kind": "errors", "params": {"rate": 1.0}, "duration_ms": 300});
    ctx.post("/admin/faults", body).admin().await?.expect(201)?;
    // Polled with a deadline: the fault must be gone within a few seconds of expiring.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = ctx.get("/api/products").await?;
        if resp.status == 200 {
            break;
        }
        resp.expect_error(503, "unavailable")?;
        if Instant::now() > deadline {
            bail!("a 300 ms fault was still failing the catalog after 5 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(
        active_faults(&ctx).await?.is_empty(),
        "an expired fault is still listed"
    );
    Ok(())
}

async fn a_latency_fault_slows_its_context_down(ctx: Ctx) -> Result<()> {
    inject(&ctx, "catalog", "latency", json!({"ms": 400})).await?;
    let started = Instant::now();
    ctx.get("/api/products").await?.expect(200)?;
    let took = started.elapsed();
    ensure!(
        took >= Duration::from_millis(400),
        "a 400 ms latency fault took only {took:?}"
    );
    clear(&ctx).await?;
    Ok(())
}

async fn inject(ctx: &Ctx, context: &str, kind: &str, params: Value) -> Result<()> {
    let body = json!({"context": context, "kind": kind, "params": params});
    ctx.post("/admin/faults", body).admin().await?.expect(201)?;
    Ok(())
}

async fn clear(ctx: &Ctx) -> Result<()> {
    ctx.delete("/admin/faults").admin().await?.expect(200)?;
    Ok(())
}

async fn active_faults(ctx: &Ctx) -> Result<Vec<Value>> {
    Ok(ctx
        .get("/admin/faults")
        .admin()
        .await?
        .expect(200)?
        .array_at("items")?
        .to_vec())
}

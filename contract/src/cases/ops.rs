//! Operations endpoints: `/health`, `/ready`, `/metrics`, the OpenAPI document and what an
//! unknown route answers.

use anyhow::{Context as _, Result, ensure};

use crate::{Case, Ctx, Fields};

pub(crate) fn cases() -> Vec<Case> {
    cases![ops:
        health_answers_200,
        ready_answers_200_when_the_database_is_up,
        metrics_count_requests_by_method_route_template_and_status,
        metrics_label_unknown_ids_by_route_template_not_by_raw_path,
        metrics_expose_a_latency_histogram_and_an_in_flight_gauge,
        metrics_without_the_admin_token_return_401_on_the_public_and_the_admin_port,
        the_metrics_token_opens_metrics_on_both_ports,
        openapi_document_lists_every_public_path,
        unknown_route_returns_404_with_an_error_body,
    ]
}

async fn health_answers_200(ctx: Ctx) -> Result<()> {
    ctx.get("/health").await?.expect(200)?;
    Ok(())
}

async fn ready_answers_200_when_the_database_is_up(ctx: Ctx) -> Result<()> {
    ctx.get("/ready").await?.expect(200)?;
    Ok(())
}

async fn metrics_count_requests_by_method_route_template_and_status(ctx: Ctx) -> Result<()> {
    ctx.get("/api/products/3").await?.expect(200)?;
    ctx.get("/api/products/4").await?.expect(200)?;
    let metrics = metrics_text(&ctx).await?;
    let line = metrics
        .lines()
        .find(|line| {
            line.starts_with("http_requests_total{")
                && line.contains(r#"method="GET""#)
                && line.contains(r#"route="/api/products/{id}""#)
                && line.contains(r#"status="200""#)
        })
        .with_context(|| {
            format!("no http_requests_total line for GET /api/products/{{id}} 200 in:\n{metrics}")
        })?;
    let count: f64 = sample_value(line)?;
    ensure!(
        count >= 2.0,
        "two product pages were served but the counter says {count}: {line}"
    );
    Ok(())
}

async fn metrics_label_unknown_ids_by_route_template_not_by_raw_path(ctx: Ctx) -> Result<()> {
    ctx.get("/api/products/987654")
        .await?
        .expect_error(404, "not_found")?;
    let metrics = metrics_text(&ctx).await?;
    // A raw path as a label value would give every id its own time series.
    ensure!(
        !metrics.contains("987654"),
        "a raw product id leaked into the metric labels:\n{metrics}"
    );
    ensure!(
        metrics
            .lines()
            .any(|line| line.starts_with("http_requests_total{")
                && line.contains(r#"route="/api/products/{id}""#)
                && line.contains(r#"status="404""#)),
        "the 404 on /api/products/{{id}} is not counted under its template:\n{metrics}"
    );
    Ok(())
}

async fn metrics_expose_a_latency_histogram_and_an_in_flight_gauge(ctx: Ctx) -> Result<()> {
    ctx.get("/api/products").await?.expect(200)?;
    let metrics = metrics_text(&ctx).await?;
    for expected in [
        "http_request_duration_seconds_bucket{",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "http_requests_in_flight",
    ] {
        ensure!(
            metrics.contains(expected),
            "{expected} is missing from /metrics:\n{metrics}"
        );
    }
    ensure!(
        metrics.lines().any(
            |line| line.starts_with("http_request_duration_seconds_bucket{")
                && line.contains(r#"le="+Inf""#)
        ),
        "the latency histogram has no +Inf bucket"
    );
    Ok(())
}

async fn openapi_document_lists_every_public_path(ctx: Ctx) -> Result<()> {
    let resp = ctx.get("/api/openapi.json").await?;
    let document = resp.expect(200)?;
    document.str_at("openapi")?;
    let paths = document.field("paths")?;
    for path in [
        "/api/users",
        "/api/sessions",
        "/api/products",
        "/api/products/{id}",
        "/api/cart",
        "/api/cart/items/{product_id}",
        "/api/orders",
        "/api/orders/{id}",
    ] {
        paths
            .field(path)
            .with_context(|| format!("the OpenAPI document lacks {path}"))?;
    }
    Ok(())
}

async fn unknown_route_returns_404_with_an_error_body(ctx: Ctx) -> Result<()> {
    ctx.get("/api/no-such-thing")
        .await?
        .expect_error(404, "not_found")?;
    ctx.get("/nowhere/at/all")
        .await?
        .expect_error(404, "not_found")?;
    Ok(())
}

/// `/metrics` names routes, replicas and error rates: the scraper proves itself with the
/// admin token, and nobody else reads them.
async fn metrics_without_the_admin_token_return_401_on_the_public_and_the_admin_port(
    ctx: Ctx,
) -> Result<()> {
    ctx.get("/metrics")
        .await?
        .expect_error(401, "unauthenticated")?;
    let resp = ctx.get("/metrics").token("not-the-admin-token").await?;
    resp.expect_error(401, "unauthenticated")?;
    ensure!(
        !resp.text.contains("http_requests_total"),
        "a refused scrape still carried metrics: {}",
        resp.text
    );
    // A user's bearer token is not a scraper's either.
    let token = ctx.login_seeded(1).await?;
    ctx.get("/metrics")
        .token(&token)
        .await?
        .expect_error(401, "unauthenticated")?;
    let admin_port = format!("{}/metrics", ctx.target().admin_url.trim_end_matches('/'));
    let status = reqwest::get(&admin_port)
        .await
        .with_context(|| format!("GET {admin_port}"))?
        .status();
    ensure!(
        status == 401,
        "GET {admin_port} without a token answered {status}"
    );
    Ok(())
}

/// The scraper's own credential: it reads `/metrics` wherever the admin token does.
async fn the_metrics_token_opens_metrics_on_both_ports(ctx: Ctx) -> Result<()> {
    let metrics_token = ctx.target().metrics_token.clone();
    let resp = ctx.get("/metrics").token(&metrics_token).await?;
    resp.expect(200)?;
    ensure!(
        resp.text.contains("http_requests_total"),
        "no metrics in: {}",
        resp.text
    );
    let admin_port = format!("{}/metrics", ctx.target().admin_url.trim_end_matches('/'));
    let status = reqwest::Client::new()
        .get(&admin_port)
        .bearer_auth(&metrics_token)
        .send()
        .await
        .with_context(|| format!("GET {admin_port}"))?
        .status();
    ensure!(
        status == 200,
        "GET {admin_port} with the metrics token answered {status}"
    );
    Ok(())
}

async fn metrics_text(ctx: &Ctx) -> Result<String> {
    let resp = ctx.get("/metrics").admin().await?;
    resp.expect(200)?;
    Ok(resp.text)
}

/// The value of one Prometheus sample line (`name{labels} value [timestamp]`).
fn sample_value(line: &str) -> Result<f64> {
    let after_labels = line.rsplit_once('}').map_or(line, |(_, rest)| rest);
    let value = after_labels
        .split_whitespace()
        .next()
        .context("a sample without a value")?;
    value
        .parse()
        .with_context(|| format!("not a number: {value}"))
}

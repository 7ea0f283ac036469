//! `/metrics` of the real process: the text format with HELP and TYPE for every family, the
//! build info, the pools of its one database, and OpenMetrics for a scraper that asks.

use crate::process::{ADMIN_TOKEN, Process};

#[tokio::test]
async fn metrics_name_the_build_and_report_the_reader_and_writer_pools_in_the_text_format() {
    let monolith = Process::start().await;
    let response = monolith
        .client
        .get(monolith.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let build_info = format!("pid=\"{}\"", monolith.child.id());
    assert!(
        text.lines()
            .any(|line| line.starts_with("shoplab_build_info{") && line.contains(&build_info)),
        "no build info naming this process in:\n{text}"
    );
    for pool in ["reader", "writer"] {
        for family in [
            "db_pool_connections",
            "db_pool_connections_idle",
            "db_pool_connections_in_use",
            "db_pool_max_connections",
        ] {
            let series = format!("{family}{{pool=\"{pool}\"}} ");
            assert!(text.contains(&series), "no {series}in:\n{text}");
        }
    }
    assert!(text.contains("db_pool_max_connections{pool=\"writer\"} 1\n"));
    // The families the text format names after their samples, not OpenMetrics' bare names.
    assert!(text.contains("# TYPE http_requests_total counter\n"));
    assert!(!text.contains("# EOF"));
}

#[tokio::test]
async fn a_scraper_that_asks_for_openmetrics_gets_openmetrics() {
    let monolith = Process::start().await;
    let response = monolith
        .client
        .get(monolith.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE http_requests counter\n"));
}

/// Empty configured tokens are no tokens: each would match a request that sends none, and
/// open `/metrics` or the admin API to anyone. The process generates its own instead.
#[tokio::test]
async fn empty_admin_and_metrics_tokens_open_nothing_to_a_request_without_a_token() {
    let monolith = Process::start_with(
        tempfile::tempdir().unwrap(),
        &[],
        &[("SHOPLAB_ADMIN_TOKEN", ""), ("SHOPLAB_METRICS_TOKEN", "")],
    )
    .await;
    for path in ["/metrics", "/admin/audit", "/admin/faults"] {
        let bare = monolith
            .client
            .get(monolith.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), 401, "{path} without a token");
        let empty = monolith
            .client
            .get(monolith.url(path))
            .header("authorization", "Bearer ")
            .send()
            .await
            .unwrap();
        assert_eq!(empty.status(), 401, "{path} with an empty bearer token");
    }
}

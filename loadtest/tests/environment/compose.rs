//! The compose target on real containers: the engine's restart policy after a kill, a
//! rolling deploy that replaces a container, a CPU limit put on and lifted, a network cut
//! that the product page absorbs, a topology between the builds from its generated file, and
//! nothing left behind.
//!
//! They need a Docker engine and the images: `.ci/compose.sh` builds them and runs these
//! with `SHOPLAB_TEST_COMPOSE_TAG=<tag>`. Without it they are reported ignored, with the
//! reason (`testkit::needs::compose_images`): a fresh machine with only Rust has no engine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use domain::Context;
use loadtest_platform::compose::ComposeSettings;
use loadtest_platform::local::supervisor::{Build, Component, NetworkFault};
use loadtest_platform::{Target, TargetSettings};
use serde_json::{Value, json};

use crate::support::{
    SEED, answer, checkout_at, eventually, log_in_at, put_in_cart_at, started_target,
    target_settings,
};

/// The compose target's settings for one test, on the images tagged `tag`.
fn compose_settings(test: &str, tag: String) -> TargetSettings {
    TargetSettings {
        platform: "compose".to_owned(),
        compose: ComposeSettings {
            file: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"),
            tag,
            project: Some(project_prefix(test)),
            ..ComposeSettings::default()
        },
        ..target_settings()
    }
}

fn project_prefix(test: &str) -> String {
    format!("shoplab-test-{}-{test}", std::process::id())
}

/// The project's containers (`docker ps -a` by the project's label): id and service.
fn containers(project: &str) -> Vec<(String, String)> {
    let output = std::process::Command::new("docker")
        .args([
            "ps",
            "--all",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.ID}} {{.Label \"com.docker.compose.service\"}}",
        ])
        .output()
        .expect("docker runs");
    assert!(output.status.success(), "docker ps failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, service)| (id.to_owned(), service.to_owned()))
        .collect()
}

fn inspect(id: &str, format: &str) -> String {
    let output = std::process::Command::new("docker")
        .args(["inspect", "--format", format, id])
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub async fn on_compose_the_engine_restarts_a_killed_monolith_and_a_rolling_deploy_replaces_its_container(
    tag: String,
) {
    let settings = compose_settings("monolith", tag);
    let project = format!("{}-monolith", project_prefix("monolith"));
    let mut target = started_target(Build::Monolith, &settings).await;
    let http = reqwest::Client::new();
    let list = format!("{}/api/products", target.url());
    assert_eq!(answer(http.get(&list)).await.0, 200);

    // A crash, as the engine sees one: its restart policy brings the container back, the
    // lab sees the restart, and the front door follows the new published port.
    let before = containers(&project);
    assert_eq!(before.len(), 1, "one monolith container: {before:?}");
    target.kill(Component::Monolith).await.expect("kill -9");
    let restarts = target
        .self_heal_until(Instant::now() + Duration::from_secs(10))
        .await;
    assert_eq!(restarts.len(), 1, "one restart seen: {restarts:?}");
    assert_eq!(restarts[0].component, "monolith");
    assert!(restarts[0].down_ms > 0);
    assert_eq!(inspect(&before[0].0, "{{.RestartCount}}"), "1");
    assert_eq!(answer(http.get(&list)).await.0, 200, "served again");

    // Rolling: a new container, ready before the old one is stopped and removed.
    target
        .roll(Component::Monolith)
        .await
        .expect("rolling deploy");
    let after = containers(&project);
    assert_eq!(after.len(), 1, "the old container is gone: {after:?}");
    assert_ne!(after[0].0, before[0].0, "a new container serves");
    assert_eq!(answer(http.get(&list)).await.0, 200);

    // The CPU limit is the engine's, put back as the compose file has it.
    let limited = target
        .limit_cpu(Component::Monolith, 0.2)
        .await
        .expect("docker update --cpus");
    assert!(limited.not_realized.is_none());
    assert_eq!(
        inspect(&after[0].0, "{{.HostConfig.NanoCpus}}"),
        "200000000"
    );
    target.lift(limited).await.expect("lift the limit");
    assert_eq!(
        inspect(&after[0].0, "{{.HostConfig.NanoCpus}}"),
        "1000000000"
    );

    // The monolith has no network between its contexts.
    let cut = target
        .break_calls(Context::Recommendations, NetworkFault::Cut)
        .await
        .expect("asked");
    assert!(
        cut.not_realized
            .as_deref()
            .is_some_and(|why| why.starts_with("not applicable:"))
    );

    target.stop().await.expect("compose down");
    assert_eq!(containers(&project), Vec::new(), "nothing left behind");
}

pub async fn on_compose_a_cut_network_to_recommendations_empties_the_list_and_reconnecting_brings_it_back(
    tag: String,
) {
    let settings = compose_settings("micro", tag);
    let project = format!("{}-micro", project_prefix("micro"));
    let mut target = started_target(Build::Micro, &settings).await;
    let http = reqwest::Client::new();
    let page = format!("{}/api/products/1", target.url());
    let recommendations = async |http: &reqwest::Client| -> (u16, usize) {
        let (status, body): (u16, Value) = answer(http.get(&page)).await;
        let count = body["recommendations"].as_array().map_or(0, Vec::len);
        (status, count)
    };
    let (status, count) = recommendations(&http).await;
    assert_eq!(status, 200);
    assert!(count > 0, "the seeded page has recommendations");

    // A catalogue kind compose has no mechanism for is recorded as such, and nothing changes.
    let truncate =
        domain::faults::validate("net_truncate", &Value::Null).expect("a catalogue kind");
    let refused = target
        .inject(Context::Recommendations, truncate)
        .await
        .expect("an answer, not an error");
    assert!(
        refused
            .not_realized
            .as_deref()
            .is_some_and(|why| why.starts_with("not applicable")),
        "{:?}",
        refused.not_realized
    );
    assert_eq!(recommendations(&http).await.0, 200);

    let cut = target
        .break_calls(Context::Recommendations, NetworkFault::Cut)
        .await
        .expect("docker network disconnect");
    assert!(cut.not_realized.is_none(), "{:?}", cut.not_realized);
    eventually(
        Duration::from_secs(15),
        "a 200 product page without recommendations",
        async || recommendations(&http).await == (200, 0),
    )
    .await;
    target.lift(cut).await.expect("reconnect");
    eventually(
        Duration::from_secs(20),
        "recommendations on the page again",
        async || {
            let (status, count) = recommendations(&http).await;
            status == 200 && count > 0
        },
    )
    .await;

    // A recreate is a new container of the same service, and the shop answers again.
    let catalog_before: Vec<String> = containers(&project)
        .into_iter()
        .filter(|(_, service)| service == "catalog")
        .map(|(id, _)| id)
        .collect();
    target
        .recreate(Component::Service(Context::Catalog))
        .await
        .expect("recreate catalog");
    let catalog_after: Vec<String> = containers(&project)
        .into_iter()
        .filter(|(_, service)| service == "catalog")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(catalog_after.len(), 1);
    assert_ne!(catalog_after, catalog_before);
    eventually(
        Duration::from_secs(15),
        "the page after the recreate",
        async || recommendations(&http).await.0 == 200,
    )
    .await;

    target.stop().await.expect("compose down");
    assert_eq!(containers(&project), Vec::new(), "nothing left behind");
}

pub async fn the_workshop_on_compose_shows_the_containers_lets_the_engine_heal_a_kill_and_refuses_what_compose_cannot_do(
    tag: String,
) {
    let test = "workshop";
    let settings = compose_settings(test, tag);
    let _exclusive = crate::support::exclusive().await;
    let compose_file = settings.compose.file.display().to_string();
    let prefix = project_prefix(test);
    let workshop = crate::workshop::Workshop::start_with(
        500,
        &[
            "--target",
            "compose",
            "--compose-file",
            &compose_file,
            "--image-tag",
            &settings.compose.tag,
            "--compose-project",
            &prefix,
        ],
    );
    let state = workshop.state().await;
    let capabilities = &state["builds"][0]["capabilities"];
    assert_eq!(capabilities["platform"], "compose", "{capabilities}");
    // The engine's restart policy is the process manager: the page's self-healing is not.
    assert_eq!(capabilities["lab_restarts"], false, "{capabilities}");
    let unavailable = &capabilities["unavailable"];
    assert!(unavailable.get("net_cut").is_none(), "{capabilities}");
    assert!(
        unavailable["net_latency"]
            .as_str()
            .is_some_and(|why| why.starts_with("not applicable")),
        "{capabilities}"
    );
    // Refused with the reason before anything is accepted, and nothing changes.
    let (status, error) = workshop
        .post(
            "/api/builds/micro/components/catalog/network",
            Some(json!({"kind": "latency"})),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("not applicable")),
        "{error}"
    );

    // The page's boxes are the project's containers, with the engine's host PIDs; a kill
    // through the page: the engine brings catalog back, with a new PID.
    workshop
        .a_killed_catalog_comes_back(Duration::from_secs(60), "the engine")
        .await;
}

/// A topology between the builds on compose: its file generated from the micro profile and
/// written where asked, one container per group (`shoplab/host`) and the gateway; a sale
/// through the gateway (the saga: `buy` calls `browse` for the prices); `payments` killed is
/// `buy`'s container killed, which the engine restarts, and the next sale goes through;
/// the audit holds.
pub async fn on_compose_a_topology_runs_a_container_per_group_sells_through_the_gateway_and_heals_the_group_of_payments(
    tag: String,
) {
    let mut settings = compose_settings("topology", tag);
    let generated = tempfile::tempdir().expect("a folder");
    settings.compose.generated = Some(generated.path().to_owned());
    let project = format!("{}-browse-buy", project_prefix("topology"));
    let topology = domain::Topology::parse("browse-buy").expect("a preset");
    let mut target = Target::start_topology(&topology, &settings)
        .await
        .unwrap_or_else(|error| panic!("browse-buy starts on compose: {error:#}"));
    let summary = target.reset(&settings).await.expect("reset");
    assert_eq!(summary.user_password, format!("shoplab-{SEED}"));

    let file = std::fs::read_to_string(generated.path().join("compose-browse-buy.yml"))
        .expect("the generated compose file, beside the run's data");
    assert!(
        file.contains("--group=cart+inventory+orders+payments")
            && file.contains("--upstream=catalog=http://browse:8080"),
        "{file}"
    );
    let mut services: Vec<String> = containers(&project)
        .into_iter()
        .map(|(_, service)| service)
        .collect();
    services.sort();
    assert_eq!(services, ["browse", "buy", "gateway"]);
    assert_eq!(
        target.process_name(Component::Service(Context::Payments)),
        "buy"
    );
    let mut named: Vec<String> = target
        .named_probes()
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    named.sort();
    assert_eq!(named, ["browse", "buy", "front-door", "gateway"]);

    let http = reqwest::Client::new();
    let base = target.url().to_owned();
    let sell = async |key: &str| {
        let token = log_in_at(&http, &base).await;
        put_in_cart_at(&http, &base, &token, 3).await;
        checkout_at(&http, &base, &token, key).await
    };
    let (status, order) = sell("topology-first").await;
    assert_eq!(status, 201, "{order}");

    // The engine restarts the container of the group hosting payments, and the lab sees it
    // under the group's name.
    let buy: Vec<String> = containers(&project)
        .into_iter()
        .filter(|(_, service)| service == "buy")
        .map(|(id, _)| id)
        .collect();
    target
        .kill(Component::Service(Context::Payments))
        .await
        .expect("kill -9");
    let restarts = target
        .self_heal_until(Instant::now() + Duration::from_secs(10))
        .await;
    assert_eq!(restarts.len(), 1, "one restart seen: {restarts:?}");
    assert_eq!(restarts[0].component, "buy");
    assert_eq!(inspect(&buy[0], "{{.RestartCount}}"), "1");
    target.restore().await.expect("every container ready");
    let (status, order) = sell("topology-after-the-kill").await;
    assert_eq!(status, 201, "{order}");

    // A replica and a network cut are refused with the reason, before anything changes.
    let replica = target
        .add_replica(Component::Service(Context::Payments))
        .await
        .expect_err("no replica of a group");
    assert!(
        format!("{replica:#}").contains("not applicable"),
        "{replica:#}"
    );
    let cut = target
        .break_calls(Context::Catalog, NetworkFault::Cut)
        .await
        .expect("asked");
    assert!(
        cut.not_realized
            .as_deref()
            .is_some_and(|why| why.starts_with("not applicable")),
        "{:?}",
        cut.not_realized
    );

    let (audit, quiet) = target
        .quiesce(Duration::from_secs(20))
        .await
        .expect("the audit");
    assert!(quiet, "nothing left in flight");
    let report = loadtest_check::check(&audit, None);
    let broken: Vec<&str> = report
        .violated()
        .map(|invariant| invariant.id.as_str())
        .collect();
    assert!(broken.is_empty(), "invariants broken: {broken:?}");
    assert_eq!(audit.orders.len(), 2, "both sales recorded");

    target.stop().await.expect("compose down");
    assert_eq!(containers(&project), Vec::new(), "nothing left behind");
}

//! The swarm target on a real Docker Swarm of docker-in-docker nodes: Swarm heals a killed
//! task, load generators run as a task per node, Swarm rolls a service, rolls a bad release
//! back by itself, spreads calls over a scaled service's replicas, reschedules the tasks of a
//! lost node; the workshop shows the stack's tasks and Swarm healing a kill; a swarm the lab
//! did not make is used through its manager and left as it was, and runs a topology between
//! the builds there; a run leaves nothing behind, and missing images are refused before
//! anything is made.
//!
//! They need a Docker engine and the images: `.ci/swarm.sh` builds them and runs these with
//! `SHOPLAB_TEST_SWARM_TAG=<tag>`. Without it they are reported ignored, with the reason
//! (`testkit::needs::swarm_images`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use domain::Context;
use loadtest_platform::local::supervisor::{Build, Component};
use loadtest_platform::swarm::SwarmSettings;
use loadtest_platform::{Target, TargetSettings};

use crate::support::{SEED, answer, started_target, target_settings};
use loadtest_lab::generators;
use loadtest_lab::journeys::{Recorder, Shopfront};
use loadtest_lab::load::{self, LoadPlan};
use loadtest_platform::GeneratorJob;
use loadtest_results::history::Outcome;

fn swarm_settings(test: &str, tag: String, nodes: usize) -> TargetSettings {
    TargetSettings {
        platform: "swarm".to_owned(),
        swarm: SwarmSettings {
            nodes,
            prefix: Some(prefix(test)),
            tag,
            compose_file: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml"),
            ..SwarmSettings::default()
        },
        ..target_settings()
    }
}

/// Names of what a test makes: `SHOPLAB_TEST_SWARM_PREFIX` (CI's, so its cleanup finds
/// them) or the test process's own.
fn prefix(test: &str) -> String {
    let base = std::env::var("SHOPLAB_TEST_SWARM_PREFIX")
        .unwrap_or_else(|_| format!("shoplab-test-{}", std::process::id()));
    format!("{base}-{test}")
}

/// Everything on this machine's engine whose name starts with `prefix`: containers,
/// networks, volumes.
fn left_behind(prefix: &str) -> Vec<String> {
    let list = |args: &[&str]| -> Vec<String> {
        let output = std::process::Command::new("docker")
            .args(args)
            .output()
            .expect("docker runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|name| name.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    let mut found = list(&["ps", "--all", "--format", "{{.Names}}"]);
    found.extend(list(&["network", "ls", "--format", "{{.Name}}"]));
    found.extend(list(&["volume", "ls", "--format", "{{.Name}}"]));
    found
}

pub async fn on_a_swarm_a_killed_monolith_is_healed_a_roll_replaces_it_and_a_bad_release_is_rolled_back(
    tag: String,
) {
    let mut settings = swarm_settings("monolith", tag, 2);
    // The lab's own image goes onto the nodes too, for the generators below.
    settings.swarm.generators = 2;
    let mut target = started_target(Build::Monolith, &settings).await;
    let http = reqwest::Client::new();
    let list = format!("{}/api/products", target.url());
    assert_eq!(answer(http.get(&list)).await.0, 200);
    assert!(
        target
            .describe()
            .is_some_and(|detail| detail.contains("2 node(s)")),
        "{:?}",
        target.describe()
    );

    // kill -9 of the task's process: Swarm's restart policy starts another task. The
    // watch waits for the task the lab killed even past the end it was given (a fault
    // window shorter than Swarm's heal), so the heal is timed.
    target.kill(Component::Monolith).await.expect("kill -9");
    let restarts = target.self_heal_until(Instant::now()).await;
    assert_eq!(restarts.len(), 1, "one restart seen: {restarts:?}");
    assert_eq!(restarts[0].component, "monolith");
    assert!(restarts[0].down_ms > 0);
    target.restore().await.expect("every task back");
    assert_eq!(answer(http.get(&list)).await.0, 200, "served again");

    target
        .roll(Component::Monolith)
        .await
        .expect("rolling update");
    assert_eq!(answer(http.get(&list)).await.0, 200);

    let why = target
        .roll_bad_release(Component::Monolith)
        .await
        .expect("the bad release is rolled back");
    assert!(why.contains("rolled monolith back"), "{why}");
    assert_eq!(
        answer(http.get(&list)).await.0,
        200,
        "the old release serves"
    );

    // Two generators, a task on each node, their shards merged into one run.
    let start_at = generators::unix_ms() + 8_000;
    let args: Vec<String> = [
        "--users=2",
        "--duration=2",
        "--products=20",
        "--seeded-users=2",
        "--browse=0",
        "--buy=1",
        "--max-error-rate=100%",
        "--shard=-",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("--seed={SEED}"), format!("--start-at={start_at}")])
    .collect();
    let outputs = target
        .run_generators(&GeneratorJob {
            count: 2,
            args,
            cpus: 1.0,
            deadline: Duration::from_secs(120),
        })
        .await
        .expect("the generators run");
    assert_eq!(outputs.len(), 2);
    let nodes: std::collections::BTreeSet<&str> = outputs
        .iter()
        .filter_map(|output| output.generator.split(" on ").nth(1))
        .collect();
    assert_eq!(nodes.len(), 2, "one generator per node: {outputs:?}");
    let shards: Vec<_> = outputs
        .iter()
        .map(|output| generators::read_shard(&output.stdout).expect("a whole shard"))
        .collect();
    let mut shares: Vec<&str> = shards
        .iter()
        .map(|shard| shard.header.share.as_str())
        .collect();
    shares.sort_unstable();
    assert_eq!(shares, ["1/2", "2/2"]);
    let requests: usize = shards.iter().map(|shard| shard.records.len()).sum();
    let merged = generators::merge(shards, &[], start_at).expect("merges");
    assert_eq!(merged.run.records.len(), requests);
    let ok = merged
        .run
        .records
        .iter()
        .filter(|record| record.status / 100 == 2)
        .count();
    assert!(
        ok > 0,
        "the generators reached the shop from inside the swarm"
    );

    let prefix = prefix("monolith");
    target.stop().await.expect("the swarm is removed");
    assert_eq!(left_behind(&prefix), Vec::<String>::new());
}

pub async fn on_a_swarm_calls_spread_over_a_scaled_service_a_lost_node_is_rescheduled_and_a_drain_gets_spares_first(
    tag: String,
) {
    let settings = swarm_settings("micro", tag, 3);
    let mut target = started_target(Build::Micro, &settings).await;
    let http = reqwest::Client::new();
    let page = format!("{}/api/products/1", target.url());
    assert_eq!(answer(http.get(&page)).await.0, 200);

    // Two catalog tasks; the gateway finds both by DNS and balances over them.
    let catalog = Component::Service(Context::Catalog);
    assert_eq!(target.add_replica(catalog).await.expect("scale"), 2);
    let spread = async || -> Vec<u64> {
        let metrics = http
            .get(format!("{}/metrics", target.admin_url()))
            .bearer_auth(target.metrics_token())
            .send()
            .await
            .expect("the gateway's metrics")
            .text()
            .await
            .expect("text");
        metrics
            .lines()
            .filter(|line| {
                line.starts_with("hop_attempts_total{") && line.contains("upstream=\"catalog\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|count| count as u64)
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(30);
    let attempts = loop {
        for _ in 0..50 {
            assert_eq!(answer(http.get(&page)).await.0, 200);
        }
        let attempts = spread().await;
        if attempts.len() >= 2 && attempts.iter().all(|count| *count > 0) {
            break attempts;
        }
        assert!(
            Instant::now() < until,
            "calls never reached both catalog replicas: {attempts:?}"
        );
    };
    assert_eq!(attempts.len(), 2, "one series per replica: {attempts:?}");

    // A worker with tasks dies; Swarm runs them elsewhere.
    let nodes = target.nodes().await;
    assert_eq!(nodes.len(), 3);
    let victim = nodes
        .iter()
        .filter(|node| !node.manager && !node.tasks.is_empty())
        .max_by_key(|node| node.tasks.len())
        .expect("a worker with tasks")
        .hostname
        .clone();
    target.lose_node(&victim).await.expect("rescheduled");
    let after = target.nodes().await;
    assert!(
        after
            .iter()
            .find(|node| node.hostname == victim)
            .is_some_and(|node| node.tasks.is_empty()),
        "no task left on the lost node: {after:?}"
    );
    assert_eq!(
        answer(http.get(&page)).await.0,
        200,
        "served from the others"
    );
    target.return_node(&victim).await.expect("the node rejoins");

    // A drain with spares: each service on the worker first gets one more replica on
    // another node, then the worker is drained; its return takes the spares away again.
    let tasks_of = |nodes: &[loadtest_platform::NodeView]| {
        let mut count = std::collections::BTreeMap::<String, usize>::new();
        for task in nodes.iter().flat_map(|node| &node.tasks) {
            *count.entry(task.to_string()).or_default() += 1;
        }
        count
    };
    let nodes = target.nodes().await;
    let before = tasks_of(&nodes);
    let drained = nodes
        .iter()
        .filter(|node| !node.manager && !node.tasks.is_empty())
        .max_by_key(|node| node.tasks.len())
        .expect("a worker with tasks")
        .clone();
    target
        .drain_node(&drained.hostname, loadtest_platform::Drain::WithSpares)
        .await
        .expect("drained with spares");
    let during = target.nodes().await;
    assert!(
        during
            .iter()
            .find(|node| node.hostname == drained.hostname)
            .is_some_and(|node| node.tasks.is_empty()),
        "no task left on the drained node: {during:?}"
    );
    let mut spared = before.clone();
    for task in &drained.tasks {
        *spared.get_mut(&task.to_string()).expect("counted") += 1;
    }
    assert_eq!(
        tasks_of(&during),
        spared,
        "one more replica of each service that was on {}",
        drained.hostname
    );
    assert_eq!(answer(http.get(&page)).await.0, 200, "served meanwhile");
    target
        .return_node(&drained.hostname)
        .await
        .expect("the node is active again and the spares go");
    assert_eq!(
        tasks_of(&target.nodes().await),
        before,
        "back to one replica each"
    );

    let prefix = prefix("micro");
    target.stop().await.expect("the swarm is removed");
    assert_eq!(left_behind(&prefix), Vec::<String>::new());
}

pub async fn the_workshop_on_a_swarm_shows_its_tasks_lets_swarm_heal_a_kill_and_removes_the_swarm(
    tag: String,
) {
    let prefix = prefix("workshop");
    // The stack is rendered from the repository's compose file; the test runs in loadtest/.
    let compose_file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docker-compose.yml")
        .display()
        .to_string();
    {
        let workshop = crate::workshop::Workshop::start_with(
            500,
            &[
                "--target",
                "swarm",
                "--compose-file",
                &compose_file,
                "--image-tag",
                &tag,
                "--swarm-nodes",
                "2",
                "--swarm-prefix",
                &prefix,
            ],
        );
        let state = workshop.state().await;
        let capabilities = &state["builds"][0]["capabilities"];
        assert_eq!(capabilities["platform"], "swarm", "{capabilities}");
        // Swarm's restart policy heals; the page's self-healing loop is not needed.
        assert_eq!(capabilities["lab_restarts"], false, "{capabilities}");

        // The page's boxes are the stack's tasks, each with its process on this machine; a
        // kill through the page: Swarm replaces the task, and the page shows the new one.
        workshop
            .a_killed_catalog_comes_back(Duration::from_secs(90), "Swarm")
            .await;
        let events = workshop.state().await["events"].to_string();
        assert!(
            events.contains("catalog#1 is down"),
            "the page saw catalog go down: {events}"
        );
    }
    // Stopping the workshop (SIGTERM) removed its swarm.
    assert_eq!(left_behind(&prefix), Vec::<String>::new());
}

/// This machine's engine as a swarm of one node, the existing swarm of the test below: made
/// for the test when the engine is in no swarm, and left again when the test ends (pass or
/// panic); an engine that already manages a swarm is used as it is and left in it.
struct HostSwarm {
    made: bool,
    /// `docker_gwbridge` was there before: `swarm init` makes it and `swarm leave` keeps it.
    had_gateway_bridge: bool,
}

impl HostSwarm {
    fn join() -> HostSwarm {
        let docker = |args: &[&str]| {
            let output = std::process::Command::new("docker")
                .args(args)
                .output()
                .expect("docker runs");
            assert!(
                output.status.success(),
                "docker {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        let state = docker(&[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ]);
        let had_gateway_bridge = std::process::Command::new("docker")
            .args(["network", "inspect", "docker_gwbridge"])
            .output()
            .is_ok_and(|output| output.status.success());
        match state.as_str() {
            "inactive false" => {
                docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
                HostSwarm {
                    made: true,
                    had_gateway_bridge,
                }
            }
            "active true" => HostSwarm {
                made: false,
                had_gateway_bridge,
            },
            other => panic!(
                "this machine's engine is neither free nor a swarm manager \
                 (LocalNodeState, ControlAvailable: {other}); the test needs one of the two"
            ),
        }
    }
}

impl Drop for HostSwarm {
    fn drop(&mut self) {
        if self.made {
            let _ = std::process::Command::new("docker")
                .args(["swarm", "leave", "--force"])
                .output();
            if !self.had_gateway_bridge {
                let _ = std::process::Command::new("docker")
                    .args(["network", "rm", "docker_gwbridge"])
                    .output();
            }
        }
    }
}

/// `--swarm-manager`: the lab deploys to a swarm it did not make, through the manager's engine
/// alone — this machine's engine as a swarm of one node, which holds the images already.
/// Swarm heals a task the lab killed (a task on the manager's node is within reach), the
/// nodes are not the lab's to kill, and stopping removes the stack and leaves the swarm. Then
/// a topology between the builds on the same swarm (made once: no second swarm for it).
pub async fn an_existing_swarm_is_used_through_its_manager_and_left_as_it_was(tag: String) {
    let host = HostSwarm::join();
    let mut settings = swarm_settings("existing", tag, 3);
    let manager =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    settings.swarm.manager = Some(manager);
    let mut target = started_target(Build::Monolith, &settings).await;
    let detail = target.describe().unwrap_or_default();
    assert!(
        detail.contains("1 node(s)") && detail.contains("an existing swarm"),
        "{detail}"
    );
    let http = reqwest::Client::new();
    let list = format!("{}/api/products", target.url());
    assert_eq!(answer(http.get(&list)).await.0, 200);

    target.kill(Component::Monolith).await.expect("kill -9");
    let restarts = target.self_heal_until(Instant::now()).await;
    assert_eq!(restarts.len(), 1, "Swarm restarted the task: {restarts:?}");
    target.restore().await.expect("every task back");
    assert_eq!(answer(http.get(&list)).await.0, 200, "served again");

    let nodes = target.nodes().await;
    let refused = target
        .lose_node(&nodes[0].hostname)
        .await
        .expect_err("an existing swarm's node is not the lab's to kill");
    assert!(
        format!("{refused:#}").contains("not applicable"),
        "{refused:#}"
    );

    target.stop().await.expect("the stack is removed");
    let stacks = std::process::Command::new("docker")
        .args(["stack", "ls", "--format", "{{.Name}}"])
        .output()
        .expect("docker runs");
    let stacks = String::from_utf8_lossy(&stacks.stdout);
    let prefix = prefix("existing");
    assert!(
        !stacks.lines().any(|stack| stack.starts_with(&prefix)),
        "the stack is gone: {stacks}"
    );
    assert_eq!(
        left_behind(&prefix),
        Vec::<String>::new(),
        "no container, network or volume of the stack is left (the database's volume too)"
    );
    let state = std::process::Command::new("docker")
        .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .output()
        .expect("docker runs");
    assert_eq!(
        String::from_utf8_lossy(&state.stdout).trim(),
        "active",
        "the swarm itself is left as it was"
    );

    // A topology between the builds on the same swarm: its stack rendered from its
    // generated compose file, a service per group, and a short step of load through it.
    a_topology_runs_on_the_swarm(&settings).await;
    drop(host);
}

/// `browse-buy` as a stack on the swarm of `settings`: one service per group (the
/// `shoplab/host` image) and the gateway, named by its groups; a kill of `payments` is a task
/// of `buy` that Swarm replaces; three seconds of the lab's load through the front door lose
/// nothing; stopping removes it.
async fn a_topology_runs_on_the_swarm(settings: &TargetSettings) {
    let topology = domain::Topology::parse("browse-buy").expect("a preset");
    let mut target = Target::start_topology(&topology, settings)
        .await
        .unwrap_or_else(|error| panic!("browse-buy starts on the swarm: {error:#}"));
    let summary = target.reset(settings).await.expect("reset");
    let mut processes: Vec<String> = target
        .named_processes()
        .await
        .into_iter()
        .map(|process| process.name)
        .collect();
    processes.sort();
    assert_eq!(processes, ["browse", "buy", "gateway"]);

    target
        .kill(Component::Service(Context::Payments))
        .await
        .expect("kill -9");
    let restarts = target.self_heal_until(Instant::now()).await;
    assert_eq!(restarts.len(), 1, "Swarm replaced the task: {restarts:?}");
    assert_eq!(restarts[0].component, "buy");
    target.restore().await.expect("every task back");

    let plan = LoadPlan {
        base_url: target.url().to_owned(),
        users: 4,
        duration: Duration::from_secs(3),
        rate: None,
        request_timeout: Duration::from_secs(5),
    };
    let shop = Shopfront {
        products: summary.products,
        users: summary.users,
        first_user: 0,
        password: summary.user_password.clone(),
        // One buyer among the four: the small shop has two seeded users, and two buyers
        // sharing one cart would check out each other's items.
        browse_weight: 3,
        buy_weight: 1,
    };
    let run = load::run(&plan, &shop, &Recorder::new(Instant::now()))
        .await
        .expect("the load runs");
    let failed: Vec<String> = run
        .records
        .iter()
        .filter(|record| record.outcome != Outcome::Ok)
        .map(|record| format!("{} {}", record.transaction, record.status))
        .collect();
    assert!(run.records.len() > 20, "{} requests", run.records.len());
    assert_eq!(failed, Vec::<String>::new(), "of {}", run.records.len());

    target.stop().await.expect("the stack is removed");
    let prefix = prefix("existing");
    assert_eq!(left_behind(&prefix), Vec::<String>::new());
}

pub async fn missing_images_are_named_with_their_fix_before_anything_is_made(_tag: String) {
    let settings = swarm_settings("missing", "no-such-tag".to_owned(), 2);
    let refused = Target::start(Build::Monolith, &settings)
        .await
        .err()
        .expect("refused");
    let text = format!("{refused:#}");
    assert!(
        text.contains("shoplab/swarm-node:no-such-tag")
            && text.contains("deploy/swarm/build-images.sh"),
        "{text}"
    );
    assert_eq!(left_behind(&prefix("missing")), Vec::<String>::new());
}

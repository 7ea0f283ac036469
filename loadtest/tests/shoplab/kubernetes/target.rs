//! The lab's `kubernetes` target through a fake `kubectl` (`fake-kubectl.sh` beside this
//! file): the exact commands each operation sends, in order, with the namespace; the secret
//! on stdin; the port-forward started, restarted on the same ports after a deploy of the
//! front, and killed by its PID; restarts read from the pods; failures and hangs of kubectl
//! reported with its stderr. The front's `/ready` is answered by a small HTTP server on
//! loopback that the fake port-forward names as its local port.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use domain::Context;
use loadtest_platform::cgroup::ProcessLimits;
use loadtest_platform::compose::ComposeSettings;
use loadtest_platform::kubernetes::{Kubectl, KubernetesSettings, watch_restarts};
use loadtest_platform::{GeneratorJob, Target, TargetSettings, components_of};
use loadtest_results::component::{Build, Component};

/// A folder holding the fake kubectl and its answers; removed at the end.
struct FakeCluster {
    dir: tempfile::TempDir,
}

impl FakeCluster {
    /// Every pod ready, one replica per Deployment; the forwarded ports answer `/ready`.
    fn new() -> FakeCluster {
        let dir = tempfile::Builder::new()
            .prefix("shoplab-fake-kubectl-")
            .tempdir()
            .expect("temp dir");
        let kubectl = dir.path().join("kubectl");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shoplab/kubernetes/fake-kubectl.sh"),
            &kubectl,
        )
        .expect("copy the fake kubectl");
        let ready = pods(&[
            ("cart-1", "cart", true, 0),
            ("inventory-1", "inventory", true, 0),
        ]);
        let fake = FakeCluster { dir };
        fake.write("pods.ready.json", &ready);
        fake.write("pods.json", &ready);
        fake.write("deployment.json", r#"{"spec":{"replicas":1}}"#);
        fake.write("port.8080", &answer_ready().to_string());
        fake.write("port.8081", &answer_ready().to_string());
        fake
    }

    fn kubectl(&self) -> PathBuf {
        self.dir.path().join("kubectl")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write a fake answer");
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The commands sent since the last call, one per line.
    fn commands(&self) -> Vec<String> {
        let log = self.read("log");
        let _ = std::fs::remove_file(self.dir.path().join("log"));
        log.lines().map(str::to_owned).collect()
    }

    fn settings(&self) -> TargetSettings {
        TargetSettings {
            program: PathBuf::from("shoplab"),
            postgres: None,
            seed: 42,
            products: 10,
            users: 2,
            stock: 100,
            env: Vec::new(),
            forward_logs: false,
            limits: ProcessLimits::default(),
            platform: "kubernetes".to_owned(),
            compose: ComposeSettings::default(),
            kubernetes: KubernetesSettings {
                kubectl: Some(self.kubectl()),
                manifests: PathBuf::from("/srv/shoplab/deploy/kubernetes"),
                ..KubernetesSettings::default()
            },
            swarm: Default::default(),
        }
    }

    fn forward_pid(&self) -> u32 {
        self.read("forward.pid")
            .trim()
            .parse()
            .expect("the port-forward's pid")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_applies_the_secret_and_the_overlay_waits_for_every_rollout_and_forwards_the_front()
 {
    let fake = FakeCluster::new();
    let target = Target::start(Build::Micro, &fake.settings())
        .await
        .expect("start on the fake cluster");

    let mut expected = vec![
        "--namespace shoplab apply -f -".to_owned(),
        "--namespace shoplab apply -k /srv/shoplab/deploy/kubernetes/overlays/micro".to_owned(),
    ];
    for component in components_of(Build::Micro) {
        expected.push(format!(
            "--namespace shoplab rollout status deployment/{component} --timeout=180s"
        ));
    }
    expected.push(
        "--namespace shoplab port-forward service/gateway --address=127.0.0.1 :8080 :8081"
            .to_owned(),
    );
    assert_eq!(fake.commands(), expected);

    // The secret went on stdin, with the token the lab then uses, and never on a command line.
    let stdin: serde_json::Value = serde_json::from_str(&fake.read("stdin")).expect("json");
    let secret = &stdin["items"][1];
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], "shoplab");
    assert_eq!(secret["metadata"]["namespace"], "shoplab");
    assert_eq!(secret["stringData"]["admin-token"], target.admin_token());
    assert_eq!(
        secret["stringData"]["metrics-token"],
        target.metrics_token()
    );
    assert_ne!(target.metrics_token(), target.admin_token());
    assert_eq!(
        secret["stringData"]["token-secret"].as_str().map(str::len),
        Some(48)
    );
    // Every process's private key in a Secret of its own, which only its Deployment reads;
    // the shared Secret holds the public keys and no private one.
    let public_keys = secret["stringData"]["service-public-keys"]
        .as_str()
        .expect("the public keys in the shared Secret");
    for peer in domain::trust::Peer::all() {
        let own = stdin["items"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|item| item["metadata"]["name"] == format!("shoplab-key-{peer}"))
            .unwrap_or_else(|| panic!("no Secret shoplab-key-{peer}"));
        let private_key = own["stringData"]["service-key"]
            .as_str()
            .expect("a service key");
        assert!(public_keys.contains(&format!("{peer}=")), "{public_keys}");
        assert!(!public_keys.contains(private_key));
        domain::trust::Identity::new(peer, private_key, public_keys)
            .unwrap_or_else(|error| panic!("{peer}'s key does not match: {error}"));
    }
    assert_eq!(
        target.url(),
        format!("http://127.0.0.1:{}", fake.read("port.8080"))
    );
    assert_eq!(
        target.admin_url(),
        format!("http://127.0.0.1:{}", fake.read("port.8081"))
    );

    let forward = fake.forward_pid();
    assert!(alive(forward), "the port-forward runs");
    target.stop().await.expect("stop");
    assert_eq!(
        fake.commands(),
        [
            "--namespace shoplab delete -k /srv/shoplab/deploy/kubernetes/overlays/micro --ignore-not-found --wait --timeout=300s"
        ]
    );
    assert!(!alive(forward), "the port-forward was killed by its pid");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_and_faults_are_the_kubectl_commands_of_the_documented_mapping() {
    let fake = FakeCluster::new();
    let mut target = Target::start(Build::Micro, &fake.settings())
        .await
        .expect("start on the fake cluster");
    fake.commands();
    let ns = "--namespace shoplab";

    target
        .roll(Component::Service(Context::Catalog))
        .await
        .expect("roll");
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} rollout restart deployment/catalog"),
            format!("{ns} rollout status deployment/catalog --timeout=180s"),
        ]
    );

    target
        .recreate(Component::Service(Context::Cart))
        .await
        .expect("recreate");
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} get deployment cart -o json"),
            format!("{ns} scale deployment/cart --replicas=0"),
            format!("{ns} get pods -l app=cart -o json"),
            format!("{ns} scale deployment/cart --replicas=1"),
            format!("{ns} rollout status deployment/cart --timeout=180s"),
        ]
    );

    target
        .kill(Component::Service(Context::Inventory))
        .await
        .expect("kill");
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} get pods -l app=inventory -o json"),
            format!("{ns} delete pod inventory-1 --grace-period=0 --force"),
        ]
    );

    let replicas = target
        .add_replica(Component::Service(Context::Payments))
        .await
        .expect("scale");
    assert_eq!(replicas, 2);
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} get deployment payments -o json"),
            format!("{ns} scale deployment/payments --replicas=2"),
            format!("{ns} rollout status deployment/payments --timeout=180s"),
        ]
    );

    let paused = target
        .pause(Component::Service(Context::Users), true)
        .await
        .expect_err("no pause on kubernetes");
    assert!(
        format!("{paused:#}").starts_with("not applicable:"),
        "{paused:#}"
    );
    assert_eq!(fake.commands(), Vec::<String>::new());

    let why = target
        .roll_bad_release(Component::Service(Context::Users))
        .await
        .expect("a bad release is rolled back");
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} set env deployment/users SHOPLAB_SHUTDOWN_DRAIN_MS=not-a-number"),
            format!("{ns} rollout status deployment/users --timeout=20s"),
            format!("{ns} rollout undo deployment/users"),
            format!("{ns} rollout status deployment/users --timeout=180s"),
        ]
    );
    assert!(why.contains("timed out waiting for the condition"), "{why}");
    assert!(why.contains("rolled back"), "{why}");

    // A deploy of the front replaces the pod the port-forward went to: the lab starts it
    // again on the same local ports, so the load's URL stays valid.
    let old_forward = fake.forward_pid();
    let url = target.url().to_owned();
    target
        .roll(Component::Gateway)
        .await
        .expect("roll the gateway");
    let (port, admin_port) = (fake.read("port.8080"), fake.read("port.8081"));
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} rollout restart deployment/gateway"),
            format!("{ns} rollout status deployment/gateway --timeout=180s"),
            format!(
                "{ns} port-forward service/gateway --address=127.0.0.1 {port}:8080 {admin_port}:8081"
            ),
        ]
    );
    assert!(!alive(old_forward), "the old port-forward was killed");
    assert_eq!(target.url(), url);
    target.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_that_goes_unready_with_a_higher_restart_count_and_comes_back_is_one_restart() {
    let fake = FakeCluster::new();
    // Poll 1: both ready; poll 2: cart's container restarted and is not ready; from poll 3
    // on: ready again.
    fake.write(
        "pods.1.json",
        &pods(&[
            ("cart-1", "cart", true, 0),
            ("inventory-1", "inventory", true, 0),
        ]),
    );
    fake.write(
        "pods.2.json",
        &pods(&[
            ("cart-1", "cart", false, 1),
            ("inventory-1", "inventory", true, 0),
        ]),
    );
    fake.write(
        "pods.json",
        &pods(&[
            ("cart-1", "cart", true, 1),
            ("inventory-1", "inventory", true, 0),
        ]),
    );
    let kubectl = Kubectl::new(fake.kubectl(), "shoplab");
    let restarts = watch_restarts(
        &kubectl,
        &["cart", "inventory"],
        Instant::now() + Duration::from_millis(1500),
    )
    .await;
    let components: Vec<&str> = restarts
        .iter()
        .map(|restart| restart.component.as_str())
        .collect();
    assert_eq!(components, ["cart"]);
    let commands = fake.commands();
    assert!(
        commands.len() >= 3,
        "polled at least three times: {commands:?}"
    );
    assert!(
        commands
            .iter()
            .all(|command| command
                == "--namespace shoplab get pods -l app in (cart,inventory) -o json"),
        "{commands:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubectl_that_fails_or_hangs_is_an_error_that_says_what_it_said_or_how_long_it_took() {
    let fake = FakeCluster::new();
    let kubectl = Kubectl::new(fake.kubectl(), "shoplab");
    let failed = kubectl
        .run(&["fail"], Duration::from_secs(10))
        .await
        .expect_err("kubectl failed");
    let failed = format!("{failed:#}");
    assert!(failed.contains("the server is on fire"), "{failed}");
    assert!(failed.contains("--namespace shoplab fail"), "{failed}");

    let started = Instant::now();
    let hung = kubectl
        .run(&["hang"], Duration::from_millis(300))
        .await
        .expect_err("kubectl hung");
    assert!(format!("{hung:#}").contains("no answer within"), "{hung:#}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the deadline held"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generators_are_one_indexed_job_made_from_the_load_job_read_in_index_order_and_deleted() {
    let fake = FakeCluster::new();
    let mut settings = fake.settings();
    settings.kubernetes.manifests = manifests();
    let mut target = Target::start(Build::Monolith, &settings)
        .await
        .expect("start on the fake cluster");
    fake.commands();
    let ns = "--namespace shoplab";
    // Both pods done, listed out of order; each log is stderr's summary, then the shard.
    fake.write("job.json", r#"{"status":{"succeeded":2}}"#);
    fake.write(
        "pods.json",
        &generator_pods(&[
            ("shoplab-generators-1-b", 1, "node-b", "Succeeded"),
            ("shoplab-generators-0-a", 0, "node-a", "Succeeded"),
        ]),
    );
    fake.write("logs.shoplab-generators-0-a", "summary 0\n{\"shard\":0}\n");
    fake.write("logs.shoplab-generators-1-b", "summary 1\n{\"shard\":1}\n");

    let outputs = target
        .run_generators(&generator_job(2))
        .await
        .expect("the generators ran");
    assert_eq!(
        outputs
            .iter()
            .map(|output| (output.generator.as_str(), output.stdout.as_str()))
            .collect::<Vec<_>>(),
        [
            (
                "shoplab-generators-0-a on node-a",
                "summary 0\n{\"shard\":0}\n"
            ),
            (
                "shoplab-generators-1-b on node-b",
                "summary 1\n{\"shard\":1}\n"
            ),
        ]
    );
    assert_eq!(
        fake.commands(),
        [
            format!("{ns} delete job/shoplab-generators --ignore-not-found --wait=true"),
            format!("{ns} apply -f -"),
            format!("{ns} get job/shoplab-generators -o json"),
            format!("{ns} get pods -l app=shoplab-generators -o json"),
            format!("{ns} logs shoplab-generators-0-a"),
            format!("{ns} logs shoplab-generators-1-b"),
            format!("{ns} delete job/shoplab-generators --ignore-not-found --wait=true"),
        ]
    );
    // The manifests' load Job, made indexed: two pods at once, never on one node, each told
    // its index, against the build's front inside the cluster.
    let job: serde_json::Value = serde_json::from_str(&fake.read("stdin")).expect("json");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["parallelism"], 2);
    assert_eq!(job["spec"]["completions"], 2);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!([
            "load",
            "--base-url=http://monolith:8080",
            "--users=4",
            "--shard=-"
        ])
    );
    assert_eq!(
        container["env"][1],
        serde_json::json!({ "name": "SHOPLAB_GENERATOR_INDEX", "value": "$(SHOPLAB_JOB_INDEX)/2" })
    );
    target.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generator_that_fails_is_an_error_with_its_log_and_the_job_is_still_deleted() {
    let fake = FakeCluster::new();
    let mut settings = fake.settings();
    settings.kubernetes.manifests = manifests();
    let mut target = Target::start(Build::Micro, &settings)
        .await
        .expect("start on the fake cluster");
    fake.commands();
    fake.write("job.json", r#"{"status":{"succeeded":1,"failed":1}}"#);
    fake.write(
        "pods.json",
        &generator_pods(&[
            ("shoplab-generators-0-a", 0, "node-a", "Succeeded"),
            ("shoplab-generators-1-b", 1, "node-b", "Failed"),
        ]),
    );
    fake.write(
        "logs.shoplab-generators-1-b",
        "Error: http://gateway:8080/ready did not answer 200 within 30s\n",
    );
    let error = target
        .run_generators(&generator_job(2))
        .await
        .expect_err("a generator failed");
    let text = format!("{error:#}");
    assert!(
        text.contains("shoplab-generators-1-b") && text.contains("did not answer 200"),
        "{text}"
    );
    let commands = fake.commands();
    assert_eq!(
        commands.last().map(String::as_str),
        Some("--namespace shoplab delete job/shoplab-generators --ignore-not-found --wait=true"),
        "{commands:?}"
    );
    target.stop().await.expect("stop");
}

/// The repository's own manifests (the generators' Job is made from its load Job).
fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_release_that_rolls_out_is_an_error_and_is_still_undone() {
    let fake = FakeCluster::new();
    // This kubectl's rollouts always succeed: the bad release "became ready".
    let script = fake
        .read("kubectl")
        .replace("touch \"$dir/bad-release\"", ":");
    fake.write("kubectl", &script);
    let kubectl = Kubectl::new(fake.kubectl(), "shoplab");
    let error = kubectl
        .roll_bad_release("users", Duration::from_secs(5), Duration::from_secs(5))
        .await
        .expect_err("a bad release that rolled out");
    assert!(format!("{error:#}").contains("rolled out"), "{error:#}");
    let commands = fake.commands();
    assert!(
        commands.contains(&"--namespace shoplab rollout undo deployment/users".to_owned()),
        "{commands:?}"
    );
}

/// Generator pods of the Indexed Job: (name, completion index, node, phase).
fn generator_pods(pods: &[(&str, usize, &str, &str)]) -> String {
    let items: Vec<serde_json::Value> = pods
        .iter()
        .map(|(name, index, node, phase)| {
            serde_json::json!({
                "metadata": {
                    "name": name,
                    "labels": { "app": "shoplab-generators" },
                    "annotations": {
                        "batch.kubernetes.io/job-completion-index": index.to_string(),
                    },
                },
                "spec": { "nodeName": node },
                "status": { "phase": phase },
            })
        })
        .collect();
    serde_json::json!({ "items": items }).to_string()
}

fn generator_job(count: usize) -> GeneratorJob {
    GeneratorJob {
        count,
        args: vec!["--users=4".to_owned(), "--shard=-".to_owned()],
        cpus: 1.0,
        deadline: Duration::from_secs(30),
    }
}

/// A pod list as `kubectl get pods -o json` prints it: (name, app, ready, restarts).
fn pods(pods: &[(&str, &str, bool, u64)]) -> String {
    let items: Vec<serde_json::Value> = pods
        .iter()
        .map(|(name, app, ready, restarts)| {
            serde_json::json!({
                "metadata": { "name": name, "labels": { "app": app } },
                "status": {
                    "conditions": [{ "type": "Ready", "status": if *ready { "True" } else { "False" } }],
                    "containerStatuses": [{ "restartCount": restarts }],
                },
            })
        })
        .collect();
    serde_json::json!({ "items": items }).to_string()
}

/// A loopback server that answers every request 200: the front as seen through the fake
/// port-forward. Runs until the test process ends.
fn answer_ready() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    port
}

/// Whether a process of this PID still runs (reaped processes leave no /proc entry).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

//! `shoplab workshop` as a teacher uses it: the JSON API driven with reqwest (load, a kill
//! the self-healing loop undoes, the event stream, the checker, 4xx on bad input, on calls
//! from another site's page and on a second deploy while one runs; the topology picker
//! refusing bad picks with the running topology untouched, and starting a chosen grouping as
//! real processes), and the real page driven in headless Chromium through chromedriver (kill
//! a service from the page, see its box turn red and its journey fail, heal, see both
//! recover, screenshot; pick a topology and see its groups as boxes).
//!
//! The browser test needs chromedriver (`/usr/bin/chromedriver`, or the path in
//! `SHOPLAB_TEST_CHROMEDRIVER`); where there is none it is reported ignored with the reason
//! (`testkit::needs::chromedriver`). CI installs Chromium and requires it (`.ci/run`).

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{answer, eventually, exclusive, shoplab_binary, spawn_with_lines};

/// How long a state the page should reach may take: a debug build on two shared cores.
// A swarm's nodes and stack take a minute or two to make; local processes start in seconds.
const DEADLINE: Duration = Duration::from_secs(240);

/// A `shoplab workshop` child; stopped (SIGTERM, then reaped) when dropped, so a failing
/// test leaves no shop behind.
pub(crate) struct Workshop {
    child: Child,
    url: String,
    pub(crate) http: reqwest::Client,
}

impl Workshop {
    /// Starts the microservices build under a workshop on a free port and waits for the
    /// line that names the page's address.
    fn start(restart_delay_ms: u64) -> Workshop {
        Workshop::start_with(restart_delay_ms, &[])
    }

    /// The same with more flags (`--target compose ...`); the microservices build unless
    /// they name `--topologies`.
    pub(crate) fn start_with(restart_delay_ms: u64, flags: &[&str]) -> Workshop {
        let mut command = Command::new(shoplab_binary());
        command.arg("workshop");
        if !flags.contains(&"--topologies") {
            command.args(["--arch", "micro"]);
        }
        command.args([
            "--port",
            "0",
            "--restart-delay-ms",
            &restart_delay_ms.to_string(),
        ]);
        command.args(flags);
        let (child, lines) = spawn_with_lines(&mut command);
        let url = page_url(&lines);
        Workshop {
            child,
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .expect("a client"),
        }
    }

    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    pub(crate) async fn state(&self) -> Value {
        answer(self.http.get(self.api("/api/state"))).await.1
    }

    /// On a platform whose own restart policy heals (the micro build): waits until every box
    /// is ready with a PID, kills catalog through the page, and waits until the platform
    /// has it back, ready, as another process.
    pub(crate) async fn a_killed_catalog_comes_back(&self, ready_within: Duration, healer: &str) {
        eventually(
            ready_within,
            "every box ready on the page, each with a PID",
            async || {
                let state = self.state().await;
                let processes = state["builds"][0]["processes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                processes.len() >= 8
                    && processes.iter().all(|process| {
                        process["health"] == "ready" && process["pid"].as_u64() > Some(1)
                    })
            },
        )
        .await;
        let before = process(&self.state().await, "catalog")["pid"].clone();
        let (status, body) = self
            .post("/api/builds/micro/components/catalog/kill", None)
            .await;
        assert_eq!(status, 200, "{body}");
        eventually(
            Duration::from_secs(60),
            &format!("catalog back by {healer}, ready, as another process"),
            async || {
                let state = self.state().await;
                let catalog = process(&state, "catalog");
                catalog["health"] == "ready"
                    && catalog["pid"].as_u64() > Some(1)
                    && catalog["pid"] != before
            },
        )
        .await;
    }

    /// `PUT /api/builds/{build}/topology` with `body`.
    async fn pick(&self, build: &str, body: Value) -> (u16, Value) {
        answer(
            self.http
                .put(self.api(&format!("/api/builds/{build}/topology")))
                .json(&body),
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.post(self.api(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }
}

impl Drop for Workshop {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The `workshop: http://ADDRESS/` line (the build takes a few seconds to start first).
fn page_url(lines: &Receiver<String>) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("shoplab workshop printed its address in time");
        if let Some(url) = line.strip_prefix("workshop: ") {
            return url.trim().to_owned();
        }
    }
}

/// The micro build's last point of `journey`, from the state.
fn last_point(state: &Value, journey: &str) -> Value {
    state["builds"][0]["series"][journey]
        .as_array()
        .and_then(|points| points.last().cloned())
        .unwrap_or(Value::Null)
}

pub(crate) fn process<'a>(state: &'a Value, component: &str) -> &'a Value {
    state["builds"][0]["processes"]
        .as_array()
        .and_then(|processes| {
            processes
                .iter()
                .find(|process| process["component"] == component)
        })
        .unwrap_or(&Value::Null)
}

pub async fn the_workshop_api_drives_load_kills_self_heals_checks_and_refuses_bad_input() {
    let _exclusive = exclusive().await;
    let workshop = Workshop::start(500);
    let state = workshop.state().await;
    assert_eq!(state["builds"][0]["build"], "micro");

    // The page's fault controls come from the catalogue: every in-process and network kind
    // the admin API and the lab know, each parameter's default inside its range.
    let catalogue = answer(workshop.http.get(workshop.api("/api/faults")))
        .await
        .1;
    let faults = catalogue["faults"].as_array().expect("a list of faults");
    for kind in [
        "latency",
        "errors",
        "cpu_hog",
        "net_cut",
        "net_latency",
        "kill",
    ] {
        assert!(
            faults.iter().any(|fault| fault["name"] == kind),
            "{kind} missing from {catalogue}"
        );
    }
    for param in faults
        .iter()
        .flat_map(|fault| fault["params"].as_array().cloned().unwrap_or_default())
    {
        let (default, min, max) = (&param["default"], &param["min"], &param["max"]);
        assert!(
            min.as_f64() <= default.as_f64() && default.as_f64() <= max.as_f64(),
            "{param}"
        );
    }

    // What the platform cannot realize is known before anything is tried: on the local
    // platform with SQLite, no database server to cut; a network cut is the lab's own proxy.
    let capabilities = &state["builds"][0]["capabilities"];
    assert_eq!(capabilities["platform"], "local", "{capabilities}");
    assert_eq!(capabilities["lab_restarts"], true, "{capabilities}");
    let unavailable = &capabilities["unavailable"];
    assert!(
        unavailable["db_down"]
            .as_str()
            .is_some_and(|why| why.starts_with("unavailable")),
        "{capabilities}"
    );
    assert!(unavailable.get("net_cut").is_none(), "{capabilities}");

    // Bad input is a 4xx with the error body, before anything is done.
    for (path, body, status, code) in [
        ("/api/load", json!({"users_per_build": 0}), 422, "invalid"),
        ("/api/load", json!({"users": 4}), 400, "bad_request"),
        (
            "/api/builds/micro/components/catalog/fault",
            json!({"kind": "melt"}),
            422,
            "invalid",
        ),
        (
            "/api/builds/micro/components/warehouse/kill",
            json!(null),
            404,
            "not_found",
        ),
        (
            "/api/builds/monolith/components/catalog/kill",
            json!(null),
            404,
            "not_found",
        ),
        (
            "/api/builds/micro/components/catalog/explode",
            json!(null),
            404,
            "not_found",
        ),
        (
            "/api/builds/micro/components/gateway/network",
            json!({"kind": "cut"}),
            422,
            "invalid",
        ),
        // Out of the catalogue's range, and a parameter the kind does not have.
        (
            "/api/builds/micro/components/catalog/fault",
            json!({"kind": "latency", "ms": 70_000}),
            422,
            "invalid",
        ),
        (
            "/api/builds/micro/components/catalog/network",
            json!({"kind": "latency", "jitter": 5}),
            422,
            "invalid",
        ),
    ] {
        let (answered, error) = workshop.post(path, Some(body.clone())).await;
        assert_eq!(answered, status, "POST {path} {body}: {error}");
        assert_eq!(error["error"]["code"], code, "POST {path} {body}: {error}");
        assert!(error["error"]["message"].is_string(), "{error}");
    }
    let malformed = workshop
        .http
        .post(workshop.api("/api/load"))
        .header("content-type", "application/json")
        .body("{not json");
    assert_eq!(answer(malformed).await.0, 400);

    // Another site's page cannot drive it: a foreign Origin, a rebound Host name, a body a
    // form or a simple request sends (text/plain) are refused, and nothing happens.
    eventually(DEADLINE, "catalog ready with a PID", async || {
        let catalog = process(&workshop.state().await, "catalog").clone();
        catalog["health"] == "ready" && catalog["pid"].as_u64() > Some(1)
    })
    .await;
    let catalog_pid = process(&workshop.state().await, "catalog")["pid"].clone();
    let kill = workshop.api("/api/builds/micro/components/catalog/kill");
    let port = reqwest::Url::parse(&kill)
        .ok()
        .and_then(|url| url.port())
        .expect("the page's port");
    for (request, status, what) in [
        (
            workshop
                .http
                .post(&kill)
                .header("origin", "http://evil.example"),
            403,
            "a foreign Origin",
        ),
        (
            workshop
                .http
                .post(&kill)
                .header("host", format!("evil.example:{port}")),
            403,
            "a rebound Host",
        ),
        (
            workshop
                .http
                .post(workshop.api("/api/load"))
                .header("content-type", "text/plain")
                .body(r#"{"users_per_build": 128}"#),
            415,
            "a text/plain body",
        ),
    ] {
        let (answered, error) = answer(request).await;
        assert_eq!(answered, status, "{what}: {error}");
        assert!(error["error"]["message"].is_string(), "{what}: {error}");
    }
    let state = workshop.state().await;
    assert_eq!(
        process(&state, "catalog")["pid"],
        catalog_pid,
        "nothing killed"
    );
    assert_eq!(state["load"]["running"], false, "no load started");
    // The page's own calls carry its origin and pass.
    let same_origin = workshop
        .http
        .put(workshop.api("/api/self-healing"))
        .header("origin", format!("http://127.0.0.1:{port}"))
        .json(&json!({"enabled": true}));
    let (status, body) = answer(same_origin).await;
    assert_eq!(status, 200, "{body}");

    // A deploy while another runs on the build is a 409 to its caller, not a 202 dropped
    // later; once the first is done, the next is accepted.
    let deploy = "/api/builds/micro/components/recommendations/deploy";
    let rolling = json!({"strategy": "rolling"});
    let deploys_done = async || {
        workshop.state().await["events"]
            .as_array()
            .map_or(0, |events| {
                events
                    .iter()
                    .filter(|event| event["kind"] == "deploy" || event["kind"] == "error")
                    .count()
            })
    };
    let before = deploys_done().await;
    let (status, first) = workshop.post(deploy, Some(rolling.clone())).await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = workshop.post(deploy, Some(rolling.clone())).await;
    assert_eq!(status, 409, "{second}");
    assert_eq!(second["error"]["code"], "busy", "{second}");
    eventually(DEADLINE, "the first deploy reported", async || {
        deploys_done().await == before + 1
    })
    .await;
    let (status, third) = workshop.post(deploy, Some(rolling)).await;
    assert_eq!(status, 202, "{third}");
    eventually(DEADLINE, "the third deploy reported", async || {
        deploys_done().await == before + 2
    })
    .await;

    // The event stream sends ticks.
    let mut stream = workshop
        .http
        .get(workshop.api("/api/stream"))
        .send()
        .await
        .expect("the stream answers");
    let mut received = String::new();
    while !received.contains("event: tick") {
        let chunk = tokio::time::timeout(DEADLINE, stream.chunk())
            .await
            .expect("a tick within the deadline")
            .expect("the stream stays open")
            .expect("a chunk");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stream);

    let (status, load) = workshop
        .post("/api/load", Some(json!({"users_per_build": 4})))
        .await;
    assert_eq!(status, 200, "{load}");
    assert_eq!(load["running"], true);
    eventually(DEADLINE, "browse succeeding under load", async || {
        let point = last_point(&workshop.state().await, "browse");
        point["requests"].as_u64() > Some(0) && point["success_rate"].as_f64() == Some(1.0)
    })
    .await;

    // A kill: the box goes down, the self-healing loop brings it back and says so.
    let pid_before = process(&workshop.state().await, "catalog")["pid"].clone();
    let (status, killed) = workshop
        .post("/api/builds/micro/components/catalog/kill", None)
        .await;
    assert_eq!(status, 200, "{killed}");
    eventually(DEADLINE, "catalog restarted by self-healing", async || {
        let state = workshop.state().await;
        let catalog = process(&state, "catalog");
        let restarted = state["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["kind"] == "restarted"
                    && event["message"]
                        .as_str()
                        .is_some_and(|message| message.starts_with("catalog#1"))
            })
        });
        restarted
            && catalog["restarts"] == 1
            && catalog["health"] == "ready"
            && catalog["pid"] != pid_before
    })
    .await;
    eventually(DEADLINE, "browse succeeding again", async || {
        last_point(&workshop.state().await, "browse")["success_rate"].as_f64() == Some(1.0)
    })
    .await;

    // The checker stops the load, then finds every invariant holding.
    let (status, checked) = workshop.post("/api/check", None).await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["results"][0]["valid"], true, "{checked}");
    assert!(
        checked["results"][0]["checkouts"].as_u64() > Some(0),
        "{checked}"
    );
    assert_eq!(workshop.state().await["load"]["running"], false);
}

/// Whether a process with `pid` exists on this machine (signal 0 delivers nothing).
fn alive(pid: &Value) -> bool {
    pid.as_u64()
        .and_then(|pid| i32::try_from(pid).ok())
        .is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
}

/// Every shop process of the first topology's boxes (not the lab's front door), by name.
fn shop_processes(state: &Value) -> Vec<Value> {
    state["builds"][0]["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|process| process["lab_part"] != true)
        .collect()
}

pub async fn the_topology_picker_refuses_bad_picks_untouched_and_starts_the_chosen_grouping() {
    let _exclusive = exclusive().await;
    let workshop = Workshop::start_with(600_000, &["--topologies", "monolith"]);
    eventually(
        DEADLINE,
        "the monolith's box ready with a PID",
        async || {
            let monolith = process(&workshop.state().await, "monolith").clone();
            monolith["health"] == "ready" && monolith["pid"].as_u64() > Some(1)
        },
    )
    .await;
    let state = workshop.state().await;
    assert_eq!(state["builds"][0]["build"], "monolith", "{state}");
    assert_eq!(
        process(&state, "monolith")["contexts"]
            .as_array()
            .map(Vec::len),
        Some(7),
        "the monolith's box hosts every context: {state}"
    );
    let presets: Vec<&str> = state["presets"]
        .as_array()
        .expect("the presets for the picker")
        .iter()
        .filter_map(|preset| preset["name"].as_str())
        .collect();
    assert_eq!(
        presets,
        ["monolith", "satellites", "browse-buy", "coarse", "micro"]
    );
    let monolith_pid = process(&state, "monolith")["pid"].clone();

    // Every bad pick is a 4xx with the error body, and the monolith runs on untouched.
    for (build, body, status, code, says) in [
        (
            "monolith",
            json!({"topology": "catalog+users"}),
            422,
            "invalid",
            "no process hosts",
        ),
        (
            "monolith",
            json!({"topology": "modular"}),
            422,
            "invalid",
            "neither a context",
        ),
        (
            "monolith",
            json!({"topology": "catalog,catalog+inventory,cart,orders,payments,users,recommendations"}),
            422,
            "invalid",
            "named twice",
        ),
        (
            "monolith",
            json!({"topo": "coarse"}),
            400,
            "bad_request",
            "topo",
        ),
        ("monolith", json!(null), 400, "bad_request", "invalid type"),
        (
            "micro",
            json!({"topology": "coarse"}),
            404,
            "not_found",
            "no topology \"micro\"",
        ),
        (
            "monolith",
            json!({"topology": "monolith"}),
            409,
            "conflict",
            "already runs",
        ),
    ] {
        let (answered, error) = workshop.pick(build, body.clone()).await;
        assert_eq!(answered, status, "PUT {build} {body}: {error}");
        assert_eq!(error["error"]["code"], code, "PUT {build} {body}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "PUT {build} {body}: {error}");
    }
    // Another site's page cannot swap it either (the guard, as for every control).
    let foreign = workshop
        .http
        .put(workshop.api("/api/builds/monolith/topology"))
        .header("origin", "http://evil.example")
        .json(&json!({"topology": "coarse"}));
    let (status, error) = answer(foreign).await;
    assert_eq!(status, 403, "{error}");
    let state = workshop.state().await;
    assert_eq!(state["builds"][0]["build"], "monolith", "{state}");
    assert_eq!(process(&state, "monolith")["pid"], monolith_pid, "{state}");
    assert!(
        alive(&monolith_pid),
        "the monolith still runs after bad picks"
    );
    let changes = |state: &Value| {
        state["events"].as_array().map_or(0, |events| {
            events
                .iter()
                .filter(|event| event["kind"] == "topology")
                .count()
        })
    };
    assert_eq!(changes(&state), 0, "no topology change began: {state}");

    // A good pick, typed as a spec: the grouping is browse-buy's, so it is named by the
    // preset; its processes are started, ready and seeded before the answer, the monolith
    // stopped.
    let (status, picked) = workshop
        .pick(
            "monolith",
            json!({"topology": "users+catalog+recommendations,cart+inventory+orders+payments"}),
        )
        .await;
    assert_eq!(status, 200, "{picked}");
    assert_eq!(picked["build"], "browse-buy", "{picked}");
    assert_eq!(picked["replaced"], "monolith", "{picked}");
    assert_eq!(picked["topology"]["checkout"], "saga", "{picked}");
    assert!(!alive(&monolith_pid), "the monolith was stopped");
    eventually(
        DEADLINE,
        "browse, buy and the gateway as boxes, ready, each a live process",
        async || {
            let state = workshop.state().await;
            let processes = shop_processes(&state);
            let mut names: Vec<&str> = processes
                .iter()
                .filter_map(|process| process["component"].as_str())
                .collect();
            names.sort_unstable();
            names == ["browse", "buy", "gateway"]
                && processes.iter().all(|process| {
                    process["health"] == "ready"
                        && process["pid"].as_u64() > Some(1)
                        && alive(&process["pid"])
                })
        },
    )
    .await;
    let state = workshop.state().await;
    assert_eq!(state["builds"][0]["build"], "browse-buy", "{state}");
    assert_eq!(
        process(&state, "browse")["contexts"],
        json!(["catalog", "recommendations", "users"]),
        "{state}"
    );
    assert_eq!(process(&state, "gateway")["contexts"], json!([]), "{state}");
    assert_eq!(
        changes(&state),
        2,
        "the start and the change logged: {state}"
    );
    // A control the grouping does not realize (a replica of a group's process) is refused
    // up front, with the reason the page greys it out by; kill, pause and deploy are not.
    let controls = &state["builds"][0]["capabilities"]["controls"];
    assert!(
        controls["scale"]
            .as_str()
            .is_some_and(|why| why.starts_with("not applicable")),
        "{state}"
    );
    assert!(controls["kill"].is_null(), "{state}");
    let (status, refused) = workshop
        .post("/api/builds/browse-buy/components/catalog/scale", None)
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, fault) = workshop
        .post(
            "/api/builds/browse-buy/components/recommendations/fault",
            Some(json!({"kind": "latency", "ms": 5})),
        )
        .await;
    assert_eq!(status, 200, "{fault}");

    // A kill aimed at a context takes its group's whole process: killing catalog takes
    // browse (catalog, recommendations, users) and leaves buy running; heal all brings
    // browse back as another process, named by its group.
    let browse_pid = process(&state, "browse")["pid"].clone();
    let buy_pid = process(&state, "buy")["pid"].clone();
    let (status, killed) = workshop
        .post("/api/builds/browse-buy/components/catalog/kill", None)
        .await;
    assert_eq!(status, 200, "{killed}");
    eventually(DEADLINE, "the browse box down", async || {
        process(&workshop.state().await, "browse")["health"] == "down"
    })
    .await;
    let state = workshop.state().await;
    assert_eq!(process(&state, "buy")["pid"], buy_pid, "{state}");
    assert!(alive(&buy_pid), "buy untouched: {state}");
    let (status, healed) = workshop.post("/api/heal", None).await;
    assert_eq!(status, 200, "{healed}");
    assert!(
        healed["results"][0]["done"]
            .as_array()
            .is_some_and(|done| done.iter().any(|line| line == "browse#1 restarted")),
        "{healed}"
    );
    eventually(
        DEADLINE,
        "browse back, ready, as another process",
        async || {
            let state = workshop.state().await;
            let browse = process(&state, "browse");
            browse["health"] == "ready" && browse["pid"] != browse_pid && alive(&browse["pid"])
        },
    )
    .await;

    // The new topology serves the journeys.
    let (status, load) = workshop
        .post("/api/load", Some(json!({"users_per_build": 2})))
        .await;
    assert_eq!(status, 200, "{load}");
    eventually(DEADLINE, "browse succeeding on browse-buy", async || {
        let point = last_point(&workshop.state().await, "browse");
        point["requests"].as_u64() > Some(0) && point["success_rate"].as_f64() == Some(1.0)
    })
    .await;
    let (status, checked) = workshop.post("/api/check", None).await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["results"][0]["valid"], true, "{checked}");
    assert_eq!(checked["results"][0]["build"], "browse-buy", "{checked}");
}

/// chromedriver on a free loopback port; killed by PID when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start(path: &PathBuf) -> Chromedriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually(DEADLINE, "chromedriver answering /status", async || {
            http.get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        })
        .await;
        Chromedriver { child, url }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Chromedriver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("SHOPLAB_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--no-first-run", "--disable-dev-shm-usage", "--window-size=1600,1100"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Polls the page until `css` matches an element.
async fn wait_for(client: &Client, css: &str) {
    eventually(DEADLINE, &format!("the page showing {css}"), async || {
        client.find(Locator::Css(css)).await.is_ok()
    })
    .await;
}

/// The number in an element's `data-value` (`None` while it shows no requests).
async fn data_value(client: &Client, id: &str) -> Option<f64> {
    let element = client.find(Locator::Id(id)).await.ok()?;
    let value = element.attr("data-value").await.ok()??;
    value.parse().ok()
}

/// Chooses `value` in the `<select>` at `css`.
async fn choose(client: &Client, css: &str, value: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|error| panic!("choose {value} in {css}: {error}"));
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
        .click()
        .await
        .unwrap_or_else(|error| panic!("click {css}: {error}"));
}

pub async fn the_page_shows_a_killed_catalog_turn_red_and_browse_fail_then_both_recover_on_heal(
    path: PathBuf,
) {
    let _exclusive = exclusive().await;
    // Self-healing far off: the box must stay red until the page's heal brings it back.
    let workshop = Workshop::start(600_000);
    let driver = Chromedriver::start(&path).await;
    let client = browser(&driver).await;
    client.goto(&workshop.url).await.expect("open the page");
    let catalog = r#".process[data-build="micro"][data-component="catalog"]"#;
    wait_for(&client, &format!(r#"{catalog}[data-health="ready"]"#)).await;
    wait_for(&client, r#"#connection[data-state="live"]"#).await;

    click(&client, "#load-start").await;
    wait_for(&client, r#"#load-status[data-running="true"]"#).await;
    eventually(DEADLINE, "browse at 100 % on the page", async || {
        data_value(&client, "success-micro-browse").await == Some(1.0)
    })
    .await;

    // Select catalog by its box, then kill it from the controls.
    click(&client, catalog).await;
    click(&client, r#"#component-controls button[data-action="kill"]"#).await;
    wait_for(&client, &format!(r#"{catalog}[data-health="down"]"#)).await;
    eventually(DEADLINE, "browse failing on the page", async || {
        data_value(&client, "success-micro-browse")
            .await
            .is_some_and(|rate| rate < 0.5)
    })
    .await;
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workshop-catalog-killed.png");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(&screenshot, png).expect("write the screenshot");
    println!("screenshot: {}", screenshot.display());

    click(&client, "#heal-all").await;
    wait_for(&client, &format!(r#"{catalog}[data-health="ready"]"#)).await;
    eventually(DEADLINE, "browse back at 100 % on the page", async || {
        data_value(&client, "success-micro-browse").await == Some(1.0)
    })
    .await;
    wait_for(&client, r#"#events li[data-kind="heal"]"#).await;
    let restarts = client
        .find(Locator::Css(catalog))
        .await
        .expect("the catalog box")
        .text()
        .await
        .expect("its text");
    assert!(restarts.contains("restarts 1"), "{restarts}");

    click(&client, "#load-stop").await;
    wait_for(&client, r#"#load-status[data-running="false"]"#).await;

    // Pick coarse on the page in place of micro: its four groups and the gateway appear as
    // boxes, each naming the contexts it hosts, and kill greys out with the reason.
    choose(&client, "#topology-replace", "micro").await;
    choose(&client, "#topology-preset", "coarse").await;
    click(&client, "#topology-pick").await;
    let storefront = r#".process[data-build="coarse"][data-component="storefront"]"#;
    wait_for(&client, &format!(r#"{storefront}[data-health="ready"]"#)).await;
    for group in ["stock", "checkout", "accounts", "gateway"] {
        wait_for(
            &client,
            &format!(
                r#".process[data-build="coarse"][data-component="{group}"][data-health="ready"]"#
            ),
        )
        .await;
    }
    assert!(
        client.find(Locator::Css(catalog)).await.is_err(),
        "the micro build's boxes are gone"
    );
    let hosts = client
        .find(Locator::Css(storefront))
        .await
        .expect("the storefront box")
        .text()
        .await
        .expect("its text");
    assert!(hosts.contains("catalog + recommendations"), "{hosts}");
    // A group's box selects its first context for the controls (a fault goes to a context).
    click(&client, storefront).await;
    let chosen = client
        .find(Locator::Id("control-component"))
        .await
        .expect("the component chooser")
        .prop("value")
        .await
        .expect("its value");
    assert_eq!(chosen.as_deref(), Some("catalog"));
    // Kill aims at the group's process; a replica of it is not realized, greyed with why.
    let kill = client
        .find(Locator::Css(
            r#"#component-controls button[data-action="kill"]"#,
        ))
        .await
        .expect("the kill button");
    assert!(
        kill.is_enabled().await.expect("read it"),
        "kill aims at a group's process on coarse"
    );
    let scale = client
        .find(Locator::Css(
            r#"#component-controls button[data-action="scale"]"#,
        ))
        .await
        .expect("the scale button");
    assert!(
        !scale.is_enabled().await.expect("read it"),
        "scale greyed on coarse"
    );
    let why = scale
        .attr("title")
        .await
        .expect("its title")
        .unwrap_or_default();
    assert!(why.contains("not applicable"), "{why}");
    wait_for(&client, r#"#events li[data-kind="topology"]"#).await;
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("workshop-coarse-picked.png");
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(&screenshot, png).expect("write the screenshot");
    println!("screenshot: {}", screenshot.display());
    client.close().await.expect("close the browser");
}

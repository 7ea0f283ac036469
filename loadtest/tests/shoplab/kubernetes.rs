//! Kubernetes. The manifests in `deploy/kubernetes/`, resolved as kustomize would resolve
//! them (no kubectl runs here), held to `docker-compose.yml`: every process started as
//! compose starts it, probes, rolling updates, resources, Services, volumes, the load Jobs.
//! Then the lab's `kubernetes` target, driven through a fake `kubectl` that records every
//! command it is given.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser as _;
use serde::Deserialize as _;
use serde_yaml_ng::Value;

mod target; // the lab's kubernetes target through a fake kubectl that records its commands

/// The two builds: the overlay's name and the compose profile's are the same.
const BUILDS: [&str; 2] = ["monolith", "micro"];

/// The features of a kustomization this file's resolver understands. Anything else in a
/// kustomization fails the tests, so that a patch or a generator added later is not
/// silently left out of what they check.
const KUSTOMIZATION_FIELDS: [&str; 5] = ["apiVersion", "kind", "namespace", "labels", "resources"];

/// Kinds that live outside any namespace, which kustomize's `namespace` leaves alone.
const CLUSTER_SCOPED: [&str; 1] = ["Namespace"];

#[test]
fn every_kustomization_lists_only_files_that_exist_and_every_manifest_is_applied() {
    // `kustomize` itself fails on a listed file that does not exist; this resolves every
    // entry point and then looks for files no entry point reaches, which would never be
    // applied and so drift unnoticed.
    let mut reached = BTreeSet::new();
    for entry in entry_points() {
        for resource in kustomize(&entry) {
            reached.insert(resource.file.clone());
        }
    }
    let mut on_disk = BTreeSet::new();
    yaml_files(&kube_dir(), &mut on_disk);
    let unreached: Vec<_> = on_disk.difference(&reached).collect();
    assert!(
        unreached.is_empty(),
        "manifests no kustomization applies: {unreached:?}"
    );
}

#[test]
fn every_container_starts_its_process_as_the_compose_file_does() {
    for build in BUILDS {
        let resources = overlay(build);
        let compose = compose_services(build);
        let deployments: BTreeMap<&str, &Resource> = resources
            .iter()
            .filter(|resource| resource.kind() == "Deployment")
            .map(|resource| (resource.name(), resource))
            .collect();
        assert_eq!(
            deployments.keys().copied().collect::<BTreeSet<_>>(),
            compose.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            "{build}: one Deployment per compose service of the profile"
        );
        for (name, service) in &compose {
            let deployment = deployments[name.as_str()];
            let container = only_container(deployment);
            let image = text(&service["image"]).replace("${SHOPLAB_TAG:-latest}", "latest");
            assert_eq!(text(&container["image"]), image, "{name}: image");
            assert_eq!(
                strings(&container["args"]),
                strings(&service["command"]),
                "{name}: the container's args are compose's command (both follow the image's entrypoint)"
            );

            let env = environment(container);
            let compose_env = service["environment"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{name}: compose environment"));
            assert_eq!(
                env.keys().cloned().collect::<BTreeSet<_>>(),
                compose_env
                    .keys()
                    .map(|key| text(key).to_owned())
                    .collect::<BTreeSet<_>>(),
                "{name}: the same environment variables as compose"
            );
            if let Some(db) = compose_env.get("SHOPLAB_DB") {
                assert_eq!(env["SHOPLAB_DB"], Env::Value(text(db).to_owned()), "{name}");
            }
            for (variable, key) in [
                ("SHOPLAB_ADMIN_TOKEN", "admin-token"),
                ("SHOPLAB_METRICS_TOKEN", "metrics-token"),
                ("SHOPLAB_TOKEN_SECRET", "token-secret"),
            ] {
                assert_eq!(
                    env[variable],
                    Env::Secret {
                        name: "shoplab".into(),
                        key: key.into()
                    },
                    "{name}: {variable} from the one Secret of the deployment"
                );
            }

            // A process's own service key from a Secret of its own, which no other
            // Deployment reads; every public key from the shared one.
            if env.contains_key("SHOPLAB_SERVICE_KEY") {
                assert_eq!(
                    env["SHOPLAB_SERVICE_KEY"],
                    Env::Secret {
                        name: format!("shoplab-key-{name}"),
                        key: "service-key".into()
                    },
                    "{name}: its own private key only"
                );
                assert_eq!(
                    env["SHOPLAB_SERVICE_PUBLIC_KEYS"],
                    Env::Secret {
                        name: "shoplab".into(),
                        key: "service-public-keys".into()
                    },
                    "{name}: every public key"
                );
            }
            // A compose service with a volume at /data keeps its database there; so must the
            // pod, on a claim of this build.
            let data_in_compose = strings(&service["volumes"])
                .iter()
                .any(|volume| volume.ends_with(":/data"));
            let mounts = strings_at(&container["volumeMounts"], "mountPath");
            assert_eq!(
                mounts.contains(&"/data".to_owned()),
                data_in_compose,
                "{name}: /data is a volume exactly where compose has one"
            );
            let ports = container_ports(container);
            for published in compose_container_ports(service) {
                assert!(
                    ports.contains(&published),
                    "{name}: compose publishes {published}, the container does not declare it"
                );
            }
        }
    }
}

#[test]
fn network_policies_admit_each_caller_to_exactly_the_services_its_upstreams_name() {
    // Who calls whom, read off compose's `--upstream` flags: the gateway calls every
    // service (its public routes and its admin fan-out), orders the saga's four.
    let compose = compose_services("micro");
    let mut callers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, service) in &compose {
        for argument in strings(&service["command"]) {
            if let Some((callee, _)) = argument
                .strip_prefix("--upstream=")
                .and_then(|upstream| upstream.split_once('='))
            {
                callers
                    .entry(callee.to_owned())
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    let resources = overlay("micro");
    let policies: Vec<&Value> = resources
        .iter()
        .filter(|resource| resource.kind() == "NetworkPolicy")
        .map(|resource| &resource.value)
        .collect();
    let selects = |policy: &Value, app: &str| {
        let selector = &policy["spec"]["podSelector"];
        selector["matchLabels"]["app"].as_str() == Some(app)
            || seq(&selector["matchExpressions"]).iter().any(|expression| {
                text(&expression["key"]) == "app"
                    && text(&expression["operator"]) == "In"
                    && strings(&expression["values"])
                        .iter()
                        .any(|value| value == app)
            })
    };
    for name in compose.keys() {
        let governing: Vec<&&Value> = policies
            .iter()
            .filter(|policy| selects(policy, name))
            .collect();
        assert!(
            governing
                .iter()
                .any(|policy| seq(&policy["spec"]["ingress"]).is_empty()),
            "{name}: no policy denies ingress by default"
        );
        let mut admitted = BTreeSet::new();
        for rule in governing
            .iter()
            .flat_map(|policy| seq(&policy["spec"]["ingress"]))
        {
            let from = seq(&rule["from"]);
            if from.is_empty() {
                admitted.insert("anywhere".to_owned());
            }
            for peer in from {
                admitted.insert(text(&peer["podSelector"]["matchLabels"]["app"]).to_owned());
            }
        }
        let expected = match name.as_str() {
            // The build's one front: the lab, an Ingress, the load Job.
            "gateway" => BTreeSet::from(["anywhere".to_owned()]),
            callee => callers.get(callee).cloned().unwrap_or_default(),
        };
        assert_eq!(admitted, expected, "{name}: who may connect");
    }
}

#[test]
fn every_deployment_is_probed_on_ready_and_health_and_rolls_one_pod_at_a_time() {
    let compose = compose_file();
    let healthcheck = strings(&compose["x-shop"]["healthcheck"]["test"]);
    // ["CMD", "/probe", "http://127.0.0.1:8080/ready"]: the path and port compose checks.
    let url = healthcheck.last().expect("compose healthcheck url");
    let (port, ready_path) = url
        .trim_start_matches("http://127.0.0.1:")
        .split_once('/')
        .expect("compose healthcheck url has a port and a path");
    let port: i64 = port.parse().expect("compose healthcheck port");
    let grace = text(&compose["x-shop"]["stop_grace_period"]);
    let grace_s: i64 = grace
        .trim_end_matches('s')
        .parse()
        .expect("stop_grace_period");

    let deregistration_delay = lab_deregistration_delay();
    let drain = Duration::from_millis(api::Settings::default().shutdown_drain_ms);

    for build in BUILDS {
        for deployment in of_kind(&overlay(build), "Deployment") {
            let name = deployment.name();
            let container = only_container(deployment);
            for (probe, path) in [
                ("readinessProbe", format!("/{ready_path}")),
                ("livenessProbe", "/health".to_owned()),
            ] {
                let get = &container[probe]["httpGet"];
                assert_eq!(text(&get["path"]), path, "{name}: {probe} path");
                assert_eq!(get["port"].as_i64(), Some(port), "{name}: {probe} port");
            }

            let strategy = &deployment.value["spec"]["strategy"];
            assert_eq!(text(&strategy["type"]), "RollingUpdate", "{name}");
            assert_eq!(
                strategy["rollingUpdate"]["maxUnavailable"].as_i64(),
                Some(0),
                "{name}: no pod goes before its successor is ready"
            );
            assert_eq!(
                strategy["rollingUpdate"]["maxSurge"].as_i64(),
                Some(1),
                "{name}"
            );

            let pod = &deployment.value["spec"]["template"];
            let selector = mapping_strings(&deployment.value["spec"]["selector"]["matchLabels"]);
            let labels = mapping_strings(&pod["metadata"]["labels"]);
            assert!(
                !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
                "{name}: the selector matches the pod template's labels"
            );

            // The pause before SIGTERM covers the lab's deregistration delay, and the grace
            // period the pause and the process's drain, as compose's stop_grace_period does.
            let pause_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_i64()
                .unwrap_or_else(|| panic!("{name}: a preStop sleep"));
            assert!(
                Duration::from_secs(pause_s as u64) >= deregistration_delay,
                "{name}: preStop pause {pause_s} s is shorter than the lab's {deregistration_delay:?}"
            );
            assert_eq!(
                pod["spec"]["terminationGracePeriodSeconds"].as_i64(),
                Some(grace_s),
                "{name}: compose's stop_grace_period"
            );
            assert!(
                Duration::from_secs(pause_s as u64) + drain < Duration::from_secs(grace_s as u64),
                "{name}: the pause and the drain fit in the grace period"
            );
        }
    }
}

#[test]
fn both_builds_request_and_limit_the_compose_files_cpu_and_memory_with_equal_totals() {
    let mut totals = Vec::new();
    for build in BUILDS {
        let compose = compose_services(build);
        let (mut cpu_total, mut memory_total) = (0.0, 0.0);
        for deployment in of_kind(&overlay(build), "Deployment") {
            let name = deployment.name();
            let resources = &only_container(deployment)["resources"];
            let replicas = deployment.value["spec"]["replicas"].as_f64().unwrap_or(1.0);
            for side in ["requests", "limits"] {
                assert!(
                    resources[side]["cpu"].as_str().is_some()
                        && resources[side]["memory"].as_str().is_some(),
                    "{name}: {side} of cpu and memory"
                );
            }
            // Requests equal to limits: Guaranteed QoS, a fixed share as compose's limits
            // give, never more when a neighbour is idle.
            assert_eq!(
                resources["requests"], resources["limits"],
                "{name}: requests equal limits"
            );
            let cpu = cpu_cores(text(&resources["limits"]["cpu"]));
            let memory = memory_mib(text(&resources["limits"]["memory"]));
            let service = &compose[name];
            assert_eq!(cpu, service["cpus"].as_f64().unwrap(), "{name}: cpu");
            assert_eq!(
                memory,
                compose_memory_mib(text(&service["mem_limit"])),
                "{name}: memory"
            );
            cpu_total += cpu * replicas;
            memory_total += memory * replicas;
        }
        totals.push((build, round(cpu_total), round(memory_total)));
    }
    assert_eq!(totals[0].1, totals[1].1, "equal CPU totals: {totals:?}");
    assert_eq!(totals[0].2, totals[1].2, "equal memory totals: {totals:?}");
    assert_eq!((totals[0].1, totals[0].2), (1.0, 1024.0), "{totals:?}");
}

#[test]
fn every_service_is_named_as_in_compose_and_selects_a_deployment_on_a_port_it_serves() {
    for build in BUILDS {
        let resources = overlay(build);
        let services = of_kind(&resources, "Service");
        assert_eq!(
            services
                .iter()
                .map(|service| service.name())
                .collect::<BTreeSet<_>>(),
            compose_services(build)
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            "{build}: one Service per compose service, with its name"
        );
        let deployments = of_kind(&resources, "Deployment");
        for service in services {
            let name = service.name();
            assert_eq!(text(&service.value["spec"]["type"]), "ClusterIP", "{name}");
            let selector = mapping_strings(&service.value["spec"]["selector"]);
            let selected: Vec<_> = deployments
                .iter()
                .filter(|deployment| {
                    let labels = mapping_strings(
                        &deployment.value["spec"]["template"]["metadata"]["labels"],
                    );
                    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
                .collect();
            assert_eq!(selected.len(), 1, "{name}: selects exactly one Deployment");
            let ports = container_ports(only_container(selected[0]));
            for port in seq(&service.value["spec"]["ports"]) {
                let target = port["targetPort"].as_i64().expect("numeric targetPort");
                assert!(ports.contains(&target), "{name}: targetPort {target}");
            }
        }
        // Every claim a pod mounts is made in the same build.
        let claims: BTreeSet<&str> = of_kind(&resources, "PersistentVolumeClaim")
            .iter()
            .map(|claim| claim.name())
            .collect();
        for deployment in &deployments {
            for volume in seq(&deployment.value["spec"]["template"]["spec"]["volumes"]) {
                if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
                    assert!(
                        claims.contains(claim),
                        "{}: claim {claim}",
                        deployment.name()
                    );
                    let access = strings(&claimed(&resources, claim)["spec"]["accessModes"]);
                    assert_eq!(access, ["ReadWriteOnce"], "{claim}");
                }
            }
        }
    }
}

#[test]
fn every_resource_is_in_the_shoplab_namespace() {
    for entry in entry_points() {
        let resources = kustomize(&entry);
        for resource in &resources {
            if CLUSTER_SCOPED.contains(&resource.kind()) {
                continue;
            }
            assert_eq!(
                resource.value["metadata"]["namespace"].as_str(),
                Some("shoplab"),
                "{} in {}",
                resource.name(),
                resource.file.display()
            );
            assert_eq!(
                resource.value["metadata"]["labels"]["app.kubernetes.io/part-of"].as_str(),
                Some("shoplab"),
                "{}",
                resource.name()
            );
        }
    }
    for build in BUILDS {
        let namespaces = of_kind(&overlay(build), "Namespace")
            .iter()
            .map(|namespace| namespace.name().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(namespaces, ["shoplab"], "{build}: the overlay creates it");
    }
}

#[test]
fn the_load_jobs_run_shoplab_load_against_their_builds_front_service() {
    for build in BUILDS {
        let jobs = kustomize(&kube_dir().join("load").join(build));
        let jobs = of_kind(&jobs, "Job");
        assert_eq!(jobs.len(), 1, "{build}: one load Job");
        let job = jobs[0];
        let pod = &job.value["spec"]["template"]["spec"];
        assert_eq!(text(&pod["restartPolicy"]), "Never");
        let containers = seq(&pod["containers"]);
        assert_eq!(containers.len(), 1);
        let container = &containers[0];
        assert_eq!(text(&container["image"]), "shoplab/shoplab:latest");
        assert!(container["resources"]["limits"]["cpu"].as_str().is_some());

        // The arguments are the `shoplab` command line's: parse them as it does.
        let args = strings(&container["args"]);
        assert_eq!(args.first().map(String::as_str), Some("load"), "{build}");
        shoplab::cli::Cli::try_parse_from(
            std::iter::once("shoplab".to_owned()).chain(args.clone()),
        )
        .unwrap_or_else(|error| panic!("{build}: the load Job's args: {error}"));

        // The front is the compose service that publishes the shop's port; the Job reaches
        // its Service by name on 8080.
        let front = compose_services(build)
            .into_iter()
            .find(|(_, service)| compose_container_ports(service).contains(&8080))
            .map(|(name, _)| name)
            .expect("a front publishing 8080");
        let base_url = args
            .iter()
            .find_map(|arg| arg.strip_prefix("--base-url="))
            .expect("--base-url=URL");
        assert_eq!(base_url, format!("http://{front}:8080"), "{build}");
        let services = overlay(build);
        assert!(
            of_kind(&services, "Service")
                .iter()
                .any(|service| service.name() == front),
            "{build}: the Service {front} exists"
        );
    }
}

// ---- the kustomize resolver and the compose file

/// One resource of a build, with the file it came from.
struct Resource {
    file: PathBuf,
    value: Value,
}

impl Resource {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// An environment variable of a container: a value, or a key of a Secret.
#[derive(Debug, PartialEq)]
enum Env {
    Value(String),
    Secret { name: String, key: String },
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn kube_dir() -> PathBuf {
    repo_root().join("deploy/kubernetes")
}

/// The folders a user applies with `kubectl apply -k`: the overlays and the load Jobs.
fn entry_points() -> Vec<PathBuf> {
    ["overlays", "load"]
        .iter()
        .flat_map(|group| BUILDS.map(|build| kube_dir().join(group).join(build)))
        .collect()
}

fn overlay(build: &str) -> Vec<Resource> {
    kustomize(&kube_dir().join("overlays").join(build))
}

/// What `kubectl kustomize dir` builds, for the fields in `KUSTOMIZATION_FIELDS`: the
/// resources (files and folders with a kustomization of their own), then this level's
/// namespace and labels over all of them, the bases' included, as kustomize applies them.
fn kustomize(dir: &Path) -> Vec<Resource> {
    let file = dir.join("kustomization.yaml");
    let kustomization = parse_one(&file);
    let fields = kustomization
        .as_mapping()
        .unwrap_or_else(|| panic!("{}: a mapping", file.display()));
    for field in fields.keys() {
        assert!(
            KUSTOMIZATION_FIELDS.contains(&text(field)),
            "{}: `{}` is not understood by this test's resolver; teach it",
            file.display(),
            text(field)
        );
    }
    assert_eq!(text(&kustomization["kind"]), "Kustomization");
    let mut resources = Vec::new();
    for entry in strings(&kustomization["resources"]) {
        let path = dir.join(&entry);
        assert!(
            path.exists(),
            "{} lists {entry}, which does not exist",
            file.display()
        );
        if path.is_dir() {
            resources.extend(kustomize(&path));
        } else {
            let path = path.canonicalize().expect("canonical path");
            resources.extend(parse_all(&path).into_iter().map(|value| Resource {
                file: path.clone(),
                value,
            }));
        }
    }
    let namespace = kustomization["namespace"].as_str();
    let mut labels = BTreeMap::new();
    for entry in seq(&kustomization["labels"]) {
        // Selectors are immutable once applied, and these labels name the build: they go
        // on the objects only.
        assert_eq!(
            entry["includeSelectors"].as_bool(),
            Some(false),
            "{}",
            file.display()
        );
        assert!(
            entry.get("includeTemplates").is_none(),
            "{}",
            file.display()
        );
        labels.extend(mapping_strings(&entry["pairs"]));
    }
    for resource in &mut resources {
        let kind = resource.kind().to_owned();
        let metadata = resource.value["metadata"]
            .as_mapping_mut()
            .unwrap_or_else(|| panic!("{}: metadata", resource.file.display()));
        if let Some(namespace) = namespace
            && !CLUSTER_SCOPED.contains(&kind.as_str())
        {
            metadata.insert("namespace".into(), namespace.into());
        }
        if !labels.is_empty() {
            let object_labels = metadata
                .entry("labels".into())
                .or_insert_with(|| Value::Mapping(Default::default()));
            let object_labels = object_labels.as_mapping_mut().expect("labels mapping");
            for (key, value) in &labels {
                object_labels.insert(key.as_str().into(), value.as_str().into());
            }
        }
    }
    resources
}

fn yaml_files(dir: &Path, files: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read deploy/kubernetes") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, files);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
            && path
                .file_name()
                .is_some_and(|name| name != "kustomization.yaml")
        {
            files.insert(path.canonicalize().expect("canonical path"));
        }
    }
}

fn parse_all(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn parse_one(path: &Path) -> Value {
    let mut documents = parse_all(path);
    assert_eq!(documents.len(), 1, "{}: one document", path.display());
    documents.remove(0)
}

/// docker-compose.yml with its `<<` merge keys applied, as Compose reads it.
fn compose_file() -> Value {
    let mut compose = parse_one(&repo_root().join("docker-compose.yml"));
    compose.apply_merge().expect("compose merge keys");
    compose
}

/// The compose services of one profile, by name.
fn compose_services(profile: &str) -> BTreeMap<String, Value> {
    let compose = compose_file();
    let services = compose["services"].as_mapping().expect("compose services");
    services
        .iter()
        .filter(|(_, service)| strings(&service["profiles"]).iter().any(|p| p == profile))
        .map(|(name, service)| (text(name).to_owned(), service.clone()))
        .collect()
}

/// The container ports compose publishes ("127.0.0.1:${SHOPLAB_PORT:-8080}:8080" -> 8080).
fn compose_container_ports(service: &Value) -> Vec<i64> {
    strings(&service["ports"])
        .iter()
        .map(|port| {
            port.rsplit(':')
                .next()
                .and_then(|port| port.parse().ok())
                .unwrap_or_else(|| panic!("compose port {port}"))
        })
        .collect()
}

fn claimed<'a>(resources: &'a [Resource], claim: &str) -> &'a Value {
    &resources
        .iter()
        .find(|resource| resource.kind() == "PersistentVolumeClaim" && resource.name() == claim)
        .expect("the claim")
        .value
}

fn of_kind<'a>(resources: &'a [Resource], kind: &str) -> Vec<&'a Resource> {
    resources
        .iter()
        .filter(|resource| resource.kind() == kind)
        .collect()
}

fn only_container(deployment: &Resource) -> &Value {
    let containers = seq(&deployment.value["spec"]["template"]["spec"]["containers"]);
    assert_eq!(
        containers.len(),
        1,
        "{}: one container per pod, one process as compose runs it",
        deployment.name()
    );
    &containers[0]
}

fn environment(container: &Value) -> BTreeMap<String, Env> {
    seq(&container["env"])
        .iter()
        .map(|variable| {
            let name = text(&variable["name"]).to_owned();
            let env = match variable["value"].as_str() {
                Some(value) => Env::Value(value.to_owned()),
                None => {
                    let secret = &variable["valueFrom"]["secretKeyRef"];
                    Env::Secret {
                        name: text(&secret["name"]).to_owned(),
                        key: text(&secret["key"]).to_owned(),
                    }
                }
            };
            (name, env)
        })
        .collect()
}

fn container_ports(container: &Value) -> Vec<i64> {
    seq(&container["ports"])
        .iter()
        .filter_map(|port| port["containerPort"].as_i64())
        .collect()
}

/// A Kubernetes CPU quantity in cores: "350m" or "1".
fn cpu_cores(quantity: &str) -> f64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().expect("millicores") / 1000.0,
        None => quantity.parse().expect("cores"),
    }
}

/// A Kubernetes memory quantity in MiB: "64Mi" or "1Gi".
fn memory_mib(quantity: &str) -> f64 {
    if let Some(mib) = quantity.strip_suffix("Mi") {
        mib.parse().expect("MiB")
    } else if let Some(gib) = quantity.strip_suffix("Gi") {
        gib.parse::<f64>().expect("GiB") * 1024.0
    } else {
        panic!("memory {quantity}: write it in Mi or Gi")
    }
}

/// A compose `mem_limit` in MiB: Docker's "m" is a mebibyte.
fn compose_memory_mib(limit: &str) -> f64 {
    limit
        .strip_suffix('m')
        .and_then(|mib| mib.parse().ok())
        .unwrap_or_else(|| panic!("compose mem_limit {limit}"))
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The lab's pause between moving traffic off a process and stopping it.
fn lab_deregistration_delay() -> Duration {
    loadtest_platform::local::supervisor::Options::new(
        loadtest_results::component::Build::Micro,
        PathBuf::from("shoplab"),
        loadtest_platform::local::supervisor::Database::Sqlite {
            dir: PathBuf::from("."),
        },
        String::new(),
        String::new(),
    )
    .deregistration_delay
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string, not {value:?}"))
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

/// A sequence of strings; absent is empty.
fn strings(value: &Value) -> Vec<String> {
    seq(value)
        .iter()
        .map(|item| text(item).to_owned())
        .collect()
}

fn strings_at(value: &Value, key: &str) -> Vec<String> {
    seq(value)
        .iter()
        .filter_map(|item| item[key].as_str().map(str::to_owned))
        .collect()
}

fn mapping_strings(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .map(|mapping| {
            mapping
                .iter()
                .map(|(key, value)| (text(key).to_owned(), text(value).to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

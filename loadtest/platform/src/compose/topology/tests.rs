//! The rendering of a topology's compose file from the repository's docker-compose.yml: no
//! engine needed.

use domain::topology::PRESETS;
use domain::trust::Keyring;

use super::*;
use crate::compose::compose_key_environment;

const COMPOSE: &str = include_str!("../../../../../docker-compose.yml");

fn rendered(spec: &str) -> (Layout, Value) {
    let topology = Topology::parse(spec).unwrap();
    let file = render(COMPOSE, &topology).unwrap();
    (Layout::of(&topology), file)
}

fn command(file: &Value, service: &str) -> Vec<String> {
    file["services"][service]["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no command of {service}: {:?}", file["services"][service]))
        .iter()
        .map(|argument| argument.as_str().unwrap().to_owned())
        .collect()
}

/// `(context, url)` of every `--upstream=` of a service.
fn upstreams_of(file: &Value, service: &str) -> Vec<(String, String)> {
    command(file, service)
        .iter()
        .filter_map(|argument| argument.strip_prefix("--upstream="))
        .map(|entry| {
            let (context, url) = entry.split_once('=').unwrap();
            (context.to_owned(), url.to_owned())
        })
        .collect()
}

/// Every topology between the builds: the presets that are neither build, and a custom one.
fn between() -> Vec<String> {
    PRESETS
        .iter()
        .map(|preset| preset.name.to_owned())
        .filter(|name| name != "monolith" && name != "micro")
        .chain(["catalog+recommendations+users,inventory,cart+orders+payments".to_owned()])
        .collect()
}

#[test]
fn every_context_is_hosted_by_exactly_one_service_and_the_gateway_reaches_it_there() {
    for spec in between() {
        let (layout, file) = rendered(&spec);
        let services = file["services"].as_mapping().unwrap();
        assert_eq!(
            services.len(),
            layout.groups().len() + 1,
            "{spec}: groups and the gateway"
        );
        let gateway = upstreams_of(&file, "gateway");
        for context in Context::ALL {
            let hosts: Vec<&str> = layout
                .groups()
                .iter()
                .filter(|(group, name)| {
                    let spec = format!("--group={}", group.spec());
                    assert!(command(&file, name).contains(&spec), "{name}: {spec}");
                    group.contains(context)
                })
                .map(|(_, name)| name.as_str())
                .collect();
            assert_eq!(hosts.len(), 1, "{spec}: {context} hosted by {hosts:?}");
            let urls: Vec<&String> = gateway
                .iter()
                .filter(|(name, _)| name == context.as_str())
                .map(|(_, url)| url)
                .collect();
            assert_eq!(
                urls,
                [&format!("http://{}:8080", hosts[0])],
                "{spec}: the gateway's {context}"
            );
        }
        for (_, name) in layout.groups() {
            assert_eq!(
                file["services"][name.as_str()]["image"].as_str(),
                Some(HOST_IMAGE)
            );
            assert!(file["services"][name.as_str()].get("profiles").is_none());
        }
    }
}

#[test]
fn a_group_calls_only_what_it_does_not_host_at_the_service_that_hosts_it() {
    let (_, file) = rendered("browse-buy");
    // Orders' four upstreams: cart, inventory and payments are in-process in `buy`.
    assert_eq!(
        upstreams_of(&file, "buy"),
        [("catalog".to_owned(), "http://browse:8080".to_owned())]
    );
    assert_eq!(upstreams_of(&file, "browse"), []);
    assert_eq!(
        command(&file, "buy")[..2],
        ["--group=cart+inventory+orders+payments", "--name=buy"]
    );
    assert_eq!(
        file["services"]["buy"]["depends_on"]["browse"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(file["services"]["browse"].get("depends_on").is_none());

    // A custom group (not a preset's) is named by its contexts, DNS-safe.
    let (_, file) = rendered("catalog+recommendations+users,inventory,cart+orders+payments");
    let mut called = upstreams_of(&file, "cart-orders-payments");
    called.sort();
    assert_eq!(
        called,
        [
            (
                "catalog".to_owned(),
                "http://catalog-recommendations-users:8080".to_owned()
            ),
            ("inventory".to_owned(), "http://inventory:8080".to_owned()),
        ]
    );
    assert_eq!(
        command(&file, "cart-orders-payments")[1],
        "--name=cart+orders+payments"
    );
}

#[test]
fn a_group_s_limits_are_the_sum_of_its_contexts_and_every_topology_keeps_the_builds_totals() {
    let compose: Value = {
        let mut compose: Value = serde_yaml_ng::from_str(COMPOSE).unwrap();
        compose.apply_merge().unwrap();
        compose
    };
    let limits = |file: &Value, service: &str| {
        let service = &file["services"][service];
        (
            service["cpus"].as_f64().unwrap(),
            mebibytes(service["mem_limit"].as_str().unwrap()).unwrap(),
        )
    };
    let monolith = limits(&compose, "monolith");
    for spec in between() {
        let (layout, file) = rendered(&spec);
        let mut total = limits(&file, "gateway");
        for (group, name) in layout.groups() {
            let (cpus, memory) = limits(&file, name);
            let apart = group
                .contexts()
                .iter()
                .fold((0.0, 0), |(cpus, memory), context| {
                    let (more_cpus, more_memory) = limits(&compose, context.as_str());
                    (cpus + more_cpus, memory + more_memory)
                });
            assert!(
                (cpus - apart.0).abs() < 1e-9,
                "{spec} {name}: {cpus} against {apart:?}"
            );
            assert_eq!(memory, apart.1, "{spec} {name}");
            total = (total.0 + cpus, total.1 + memory);
        }
        assert!((total.0 - monolith.0).abs() < 1e-9, "{spec}: {total:?}");
        assert_eq!(total.1, monolith.1, "{spec}");
    }
    let (_, file) = rendered("browse-buy");
    assert_eq!(limits(&file, "browse"), (0.5, 640));
    assert_eq!(limits(&file, "buy"), (0.3, 256));
}

#[test]
fn each_process_gets_the_keys_of_its_own_contexts_and_a_database_of_its_own() {
    let keyring = Keyring::generate();
    let environment = compose_key_environment(&keyring);
    // What compose does with `${NAME:?message}` and `${NAME:-}`: the variable's value.
    let interpolate = |template: &str| {
        let mut text = template.to_owned();
        while let Some(start) = text.find("${") {
            let end = start + text[start..].find('}').unwrap();
            let name = text[start + 2..end].split(':').next().unwrap();
            let value = environment
                .iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_else(|| panic!("{name} is not in the lab's key environment"));
            text.replace_range(start..=end, &value);
        }
        text
    };
    for spec in between() {
        let (layout, file) = rendered(&spec);
        let mut databases = BTreeSet::new();
        for (group, name) in layout.groups() {
            let environment = &file["services"][name.as_str()]["environment"];
            let key = environment["SHOPLAB_SERVICE_KEY"].as_str().unwrap();
            assert_eq!(
                interpolate(key),
                keyring.group_key(group.contexts()),
                "{spec} {name}: its contexts' keys, no other"
            );
            assert_eq!(
                environment["SHOPLAB_SERVICE_PUBLIC_KEYS"].as_str(),
                Some("${SHOPLAB_SERVICE_PUBLIC_KEYS:-}")
            );
            assert!(environment["SHOPLAB_ADMIN_TOKEN"].as_str().is_some());
            let database = environment["SHOPLAB_DB"].as_str().unwrap();
            assert_eq!(database, format!("sqlite:///data/{name}.db"));
            assert!(databases.insert(database.to_owned()));
            assert_eq!(
                file["services"][name.as_str()]["volumes"][0].as_str(),
                Some(format!("{name}-data:/data").as_str())
            );
            assert!(file["volumes"].get(format!("{name}-data")).is_some());
        }
        let gateway = &file["services"]["gateway"]["environment"]["SHOPLAB_SERVICE_KEY"];
        assert_eq!(
            interpolate(gateway.as_str().unwrap()),
            keyring.private_key(domain::trust::Peer::Gateway)
        );
    }
}

#[test]
fn the_written_file_reads_back_and_a_build_or_a_file_without_the_micro_profile_is_refused() {
    let topology = Topology::parse("coarse").unwrap();
    let text = render_text(COMPOSE, &topology).unwrap();
    assert!(text.starts_with("# The topology coarse"), "{text}");
    let back: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(back, render(COMPOSE, &topology).unwrap());

    let monolith = render(COMPOSE, &Topology::monolith()).unwrap_err();
    assert!(
        monolith.to_string().contains("monolith build"),
        "{monolith}"
    );
    let bare = render("services:\n  catalog: {image: x}\n", &topology).unwrap_err();
    assert!(bare.to_string().contains("in the micro profile"), "{bare}");
}

//! Architecture checks — rules about the crate graph belong here: the dependency direction
//! written in ARCHITECTURE.md is the one `cargo metadata` sees, in both directions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Edges = BTreeMap<String, BTreeSet<String>>;

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("loadtest sits inside the workspace")
}

/// `cargo metadata` of the workspace's own packages.
fn workspace_metadata() -> serde_json::Value {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("metadata is JSON")
}

/// Normal (non-dev, non-build) dependencies between workspace members.
fn actual_edges() -> Edges {
    let metadata = workspace_metadata();
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .map(|package| package["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut edges = Edges::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let dependencies = package["dependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let internal: BTreeSet<String> = dependencies
            .iter()
            .filter(|dependency| dependency["kind"].is_null())
            .filter_map(|dependency| dependency["name"].as_str())
            .filter(|dependency| members.contains(*dependency))
            .map(str::to_owned)
            .collect();
        edges.insert(name, internal);
    }
    edges
}

/// The rules between the `dependency-rules` markers of ARCHITECTURE.md, lines like
/// "- `monolith` -> `domain`, `store`" or "- `domain` -> (nothing)".
fn documented_edges() -> Edges {
    let text = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md"))
        .expect("read ARCHITECTURE.md");
    let start = text
        .find("<!-- dependency-rules:start -->")
        .expect("start marker");
    let end = text
        .find("<!-- dependency-rules:end -->")
        .expect("end marker");
    let mut edges = Edges::new();
    for line in text[start..end]
        .lines()
        .filter(|line| line.starts_with("- "))
    {
        let (from, to) = line[2..].split_once("->").expect("a rule has an arrow");
        let names = |part: &str| -> BTreeSet<String> {
            part.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let from = names(from)
            .into_iter()
            .next()
            .expect("a rule names its crate");
        edges.insert(from, names(to));
    }
    edges
}

#[test]
fn crate_dependencies_follow_the_documented_direction() {
    let actual = actual_edges();
    let documented = documented_edges();
    assert_eq!(
        actual, documented,
        "the workspace's crate graph differs from ARCHITECTURE.md's dependency rules; \
         a new edge is an architecture change: update the document in the same commit"
    );
}

#[test]
fn domain_depends_on_no_other_workspace_crate_and_api_never_reaches_the_store() {
    let actual = actual_edges();
    assert!(
        actual["domain"].is_empty(),
        "domain must stay free of HTTP and SQL crates"
    );
    assert!(
        !actual["api"].contains("store"),
        "handlers reach data only through context traits"
    );
}

/// Every workspace crate `from` reaches through normal dependencies, itself excluded.
fn reachable(edges: &Edges, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue = vec![from.to_owned()];
    while let Some(name) = queue.pop() {
        for next in edges.get(&name).into_iter().flatten() {
            if seen.insert(next.clone()) {
                queue.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn the_report_builds_from_the_results_schema_alone_without_platforms_or_experiments() {
    let actual = actual_edges();
    let reached = reachable(&actual, "loadtest-report");
    for forbidden in [
        "loadtest-platform",
        "loadtest-lab",
        "loadtest-check",
        "shoplab",
    ] {
        assert!(
            !reached.contains(forbidden),
            "loadtest-report reaches {forbidden}: the report must render any results.json \
             knowing nothing but the schema"
        );
    }
    assert_eq!(
        reachable(&actual, "loadtest-results"),
        BTreeSet::from(["domain".to_owned()]),
        "the results schema depends on the domain's vocabulary and nothing else"
    );
}

#[test]
fn only_the_glue_binary_knows_the_builds() {
    let actual = actual_edges();
    let builds = |name: &str| name == "monolith" || name == "store" || name.starts_with("micro-");
    for (name, _) in actual
        .iter()
        .filter(|(name, _)| name.starts_with("loadtest-"))
    {
        let leaked: Vec<String> = reachable(&actual, name)
            .into_iter()
            .filter(|dependency| builds(dependency))
            .collect();
        assert!(
            leaked.is_empty(),
            "{name} reaches the builds' code ({leaked:?}): the lab starts processes and speaks \
             HTTP to them; only the shoplab binary links the builds"
        );
    }
}

#[test]
fn domain_depends_on_no_http_or_sql_crate_unless_a_feature_asks_for_openapi() {
    let metadata = workspace_metadata();
    let domain = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| package["name"] == "domain")
        .expect("the domain package");
    let required: Vec<&str> = domain["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|dependency| dependency["kind"].is_null() && dependency["optional"] == false)
        .filter_map(|dependency| dependency["name"].as_str())
        .collect();
    for transport in [
        "axum",
        "axum-core",
        "http",
        "http-body",
        "hyper",
        "hyper-util",
        "tower",
        "tower-service",
        "tower-http",
        "reqwest",
        "utoipa",
        "utoipa-axum",
        "sqlx",
    ] {
        assert!(
            !required.contains(&transport),
            "domain depends on {transport}: the vocabulary knows nothing of HTTP or SQL \
             (OpenAPI derives sit behind its optional `openapi` feature)"
        );
    }
}

/// A `#[test]` inside a test binary built with `harness = false` compiles and never runs:
/// such binaries list their tests in a `testkit::Suite` (or a libtest-mimic list) instead.
#[test]
fn no_test_attribute_hides_in_a_binary_without_the_libtest_harness() {
    let root = workspace_root();
    let mut unrun = Vec::new();
    let mut binaries = 0;
    for manifest in manifests() {
        let text = std::fs::read_to_string(&manifest).expect("read a manifest");
        let parsed: toml::Table = text.parse().expect("a manifest is TOML");
        let tests = parsed.get("test").and_then(toml::Value::as_array);
        for test in tests.into_iter().flatten() {
            if test.get("harness").and_then(toml::Value::as_bool) != Some(false) {
                continue;
            }
            binaries += 1;
            let path = test["path"]
                .as_str()
                .expect("a harness-less test names its path");
            let dir = manifest.parent().unwrap().join(path);
            let dir = dir.parent().unwrap();
            for source in rust_files(dir) {
                let code = std::fs::read_to_string(&source).expect("read a test source");
                if code.contains("#[test]") || code.contains("#[tokio::test") {
                    unrun.push(source.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    assert!(
        binaries >= 3,
        "found only {binaries} harness-less test binaries"
    );
    assert!(unrun.is_empty(), "tests that never run: {unrun:?}");
}

fn manifests() -> Vec<std::path::PathBuf> {
    workspace_metadata()["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| package["manifest_path"].as_str().unwrap().into())
        .collect()
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a test directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
    found
}

//! The environment stamp of a run: which machine, kernel, compiler and crate versions made
//! the numbers, recorded in `results.json`.

use loadtest_results::Environment;

/// `cores`: the machine's, counted before the lab pinned itself to some of them.
pub fn stamp(cores: usize) -> Environment {
    Environment {
        shoplab_version: env!("CARGO_PKG_VERSION").into(),
        // Where the binary was built from, stamped by build.rs: not the checkout it runs in.
        git_sha: env!("SHOPLAB_BUILD_COMMIT").into(),
        // `true` or `false`; empty outside a git checkout.
        git_dirty: env!("SHOPLAB_BUILD_DIRTY").parse().ok(),
        cpu_model: cpu_model(),
        cores,
        os: sysinfo::System::long_os_version().unwrap_or_else(|_| "unknown".into()),
        kernel: sysinfo::System::kernel_version().unwrap_or_else(|_| "unknown".into()),
        rustc: env!("SHOPLAB_BUILD_RUSTC").into(),
        crates: crate_versions(),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The versions of the crates that decide the numbers, from the lock file this binary was
/// built with.
fn crate_versions() -> Vec<(String, String)> {
    const LOCK: &str = include_str!("../../Cargo.lock");
    const WANTED: [&str; 8] = [
        "goose",
        "axum",
        "hyper",
        "tokio",
        "sqlx",
        "reqwest",
        "tower",
        "serde_json",
    ];
    let mut versions = Vec::new();
    let mut name = None;
    for line in LOCK.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"'));
        } else if let (Some(value), Some(current)) = (line.strip_prefix("version = "), name)
            && WANTED.contains(&current)
        {
            versions.push((current.to_owned(), value.trim_matches('"').to_owned()));
        }
    }
    versions
}

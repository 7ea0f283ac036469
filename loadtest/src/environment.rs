//! The environment stamp of a run: which machine, kernel, compiler and crate versions made
//! the numbers, recorded in `results.json`.

use loadtest_results::Environment;

/// `cores`: the machine's, counted before the lab pinned itself to some of them.
pub fn stamp(cores: usize) -> Environment {
    Environment {
        shoplab_version: env!("CARGO_PKG_VERSION").into(),
        git_sha: command_line("git", &["rev-parse", "HEAD"]),
        cpu_model: cpu_model(),
        cores,
        os: sysinfo::System::long_os_version().unwrap_or_else(|_| "unknown".into()),
        kernel: sysinfo::System::kernel_version().unwrap_or_else(|_| "unknown".into()),
        rustc: command_line("rustc", &["--version"]),
        crates: crate_versions(),
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
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

//! Stamps the lab with where it was built from, for `results.json`'s environment: the commit,
//! whether the source differed from it, and the compiler. Read at run time instead, they
//! would describe the checkout the lab happens to run in and the `rustc` on its PATH, not
//! the binary that made the numbers.
//!
//! Hand-written rather than `vergen-gitcl`: that crate reruns only when `.git/HEAD` or the
//! branch moves, so an edit to a source file after a build left "dirty" as it was; here
//! every tracked source file is watched, so the flag is never stale. Documents and reports
//! are neither watched nor counted: they are not built into the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What is not source: editing it changes no binary, so it neither makes a build "dirty" nor
/// makes this script run again.
const NOT_SOURCE: [&str; 3] = [":!reports", ":!docs", ":!*.md"];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .parent()
        .expect("the lab's crate is in the workspace")
        .to_path_buf();
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(&root).args(args));

    println!("cargo::rerun-if-changed=build.rs");
    let (commit, dirty) = match git(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            watch_git(&root, &git);
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--", "."];
            status.extend(NOT_SOURCE);
            let dirty = git(&status).map(|changed| (!changed.is_empty()).to_string());
            (commit, dirty.unwrap_or_default())
        }
        // Built outside a git checkout (a source tarball): nothing to say.
        None => ("unknown".to_owned(), String::new()),
    };
    println!("cargo::rustc-env=SHOPLAB_BUILD_COMMIT={commit}");
    println!("cargo::rustc-env=SHOPLAB_BUILD_DIRTY={dirty}");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let compiler = output(Command::new(rustc).arg("--version")).unwrap_or("unknown".into());
    println!("cargo::rustc-env=SHOPLAB_BUILD_RUSTC={compiler}");
}

/// Reruns this script when the commit moves (HEAD, the branch it names, packed refs) or a
/// tracked source file changes.
fn watch_git(root: &Path, git: &dyn Fn(&[&str]) -> Option<String>) {
    let mut paths = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(branch);
    }
    for path in paths {
        // Only files there are: cargo reruns a script on every build for a missing one.
        let file = git(&["rev-parse", "--path-format=absolute", "--git-path", &path]);
        if let Some(file) = file.filter(|file| Path::new(file).exists()) {
            println!("cargo::rerun-if-changed={file}");
        }
    }
    let mut list = vec!["ls-files", "--", "."];
    list.extend(NOT_SOURCE);
    for file in git(&list).unwrap_or_default().lines() {
        println!("cargo::rerun-if-changed={}", root.join(file).display());
    }
}

/// The command's standard output, trimmed, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

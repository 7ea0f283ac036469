//! Test binaries whose tests need something a machine may lack: a PostgreSQL server, the
//! Docker images, chromedriver, a writable cgroup hierarchy.
//!
//! libtest decides `#[ignore]` when the test is compiled; what these tests need is only known
//! when they run. A binary with `harness = false` builds a [`Suite`] instead: a test whose
//! [`Need`] is met runs; one whose need is absent is reported *ignored*, and the reason is
//! printed — it never passes without running. Two ways keep a needed test from being ignored
//! where it must run:
//! - a need configured but broken (a variable naming a path that does not exist, a server
//!   that does not answer) is [`Unmet::Broken`], and the test fails with the reason;
//! - `SHOPLAB_TEST_REQUIRE` lists needs that must be met (comma-separated names, or `all`):
//!   CI sets it, so a test CI means to run fails there instead of being ignored.
//!
//! `cargo test -- --ignored` runs the ignored tests anyway; each then fails with its reason.

pub mod needs;

use std::future::Future;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

/// The variable listing needs that must be met here.
pub const REQUIRE_ENV: &str = "SHOPLAB_TEST_REQUIRE";

/// Why a need is not met.
#[derive(Debug, Clone)]
pub enum Unmet {
    /// Not on this machine and not asked for: the test is ignored.
    Absent(String),
    /// Asked for but not working: the test fails.
    Broken(String),
}

/// What a test needs, as found on this machine: `value` for the test, or why not.
pub struct Need<T> {
    /// A short name (`postgres`, `chromedriver`, `docker-images`, `cgroup-v1`), shown as the
    /// test's kind and matched against [`REQUIRE_ENV`].
    pub name: &'static str,
    pub found: Result<T, Unmet>,
}

impl<T> Need<T> {
    pub fn new(name: &'static str, found: Result<T, Unmet>) -> Need<T> {
        Need { name, found }
    }

    /// The need as [`REQUIRE_ENV`] judges it: absent but required counts as broken.
    fn judged(self) -> Result<T, Unmet> {
        match self.found {
            Err(Unmet::Absent(reason)) if required(self.name) => Err(Unmet::Broken(format!(
                "{reason} (and {REQUIRE_ENV} says `{}` must be met here)",
                self.name
            ))),
            found => found,
        }
    }
}

fn required(name: &str) -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|list| {
        list.split(',')
            .map(str::trim)
            .any(|item| item == name || item == "all")
    })
}

/// The tests of one binary.
#[derive(Default)]
pub struct Suite {
    trials: Vec<Trial>,
    ignored: Vec<(String, String)>,
}

impl Suite {
    pub fn new() -> Suite {
        Suite::default()
    }

    /// A test that needs nothing beyond what every machine running the suite has.
    pub fn test<F, Fut>(&mut self, name: &str, test: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output: Outcome>,
    {
        self.trials
            .push(Trial::test(name, move || run_async(test())));
    }

    /// A test that runs with what `need` found, or is ignored (absent) or fails (broken).
    pub fn needing<T, F, Fut>(&mut self, name: &str, need: Need<T>, test: F)
    where
        T: Send + 'static,
        F: FnOnce(T) -> Fut + Send + 'static,
        Fut: Future<Output: Outcome>,
    {
        let kind = format!("needs {}", need.name);
        let trial = match need.judged() {
            Ok(value) => Trial::test(name, move || run_async(test(value))),
            Err(Unmet::Broken(reason)) => Trial::test(name, move || Err(Failed::from(reason))),
            Err(Unmet::Absent(reason)) => {
                self.ignored.push((name.to_owned(), reason.clone()));
                Trial::test(name, move || Err(Failed::from(reason))).with_ignored_flag(true)
            }
        };
        self.trials.push(trial.with_kind(kind));
    }

    /// Runs the suite with the command line's filters; says why each ignored test is.
    pub fn run(self) -> ExitCode {
        let arguments = Arguments::from_args();
        for (name, reason) in &self.ignored {
            eprintln!("ignored {name}: {reason}");
        }
        libtest_mimic::run(&arguments, self.trials).exit_code()
    }
}

/// Adds `module::test` to a suite under that name: `tests!(suite, netfaults::cut)`, or with a
/// need whose value the test takes: `tests!(suite, workshop::page, needs chromedriver())`.
#[macro_export]
macro_rules! tests {
    ($suite:expr, $module:ident :: $test:ident) => {
        $suite.test(
            concat!(stringify!($module), "::", stringify!($test)),
            $module::$test,
        )
    };
    ($suite:expr, $module:ident :: $test:ident, needs $need:expr) => {
        $suite.needing(
            concat!(stringify!($module), "::", stringify!($test)),
            $need,
            $module::$test,
        )
    };
}

/// What a test returns: nothing (it asserts), or a `Result` whose error fails it.
pub trait Outcome {
    fn into_result(self) -> Result<(), Failed>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), Failed> {
        Ok(())
    }
}

impl<E: std::fmt::Debug> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), Failed> {
        // `Debug`, as libtest prints a test's error: for anyhow, the whole chain of causes.
        self.map_err(|error| Failed::from(format!("{error:?}")))
    }
}

/// Runs a test's future on a multi-threaded runtime of its own, as `#[tokio::test(flavor =
/// "multi_thread")]` would; a panic fails the test (libtest-mimic catches it).
fn run_async(test: impl Future<Output: Outcome>) -> Result<(), Failed> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failed::from(format!("a tokio runtime: {error}")))?
        .block_on(test)
        .into_result()
}

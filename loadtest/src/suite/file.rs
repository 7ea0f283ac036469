//! A suite file: the matrix of `shoplab compare` runs it names, parsed and checked whole
//! before any cell runs. Every cell's command line is parsed by compare's own flags, so a
//! value compare would refuse is refused here, before the first measurement.

use std::path::Path;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use toml::Spanned;

use loadtest_results::experiments::Kind;

/// What a suite file says, checked. Serialized canonically for the manifest's hash, so a
/// change of comment or layout is not a change of suite, and any change of setting is.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Suite {
    pub databases: Vec<Database>,
    pub targets: Vec<String>,
    /// `None`: compare's own builds (the monolith and the microservices).
    pub topologies: Option<Vec<String>>,
    pub load: Load,
    pub repeats: usize,
}

/// One cell: one `shoplab compare` run, in its own folder under the suite's `cells/`.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    /// The folder's name: the axes and the repeat, e.g. `sqlite.local.default.r1`.
    pub name: String,
    pub database: Database,
    pub target: String,
    pub topologies: Option<String>,
    /// 1-based.
    pub repeat: usize,
    /// compare's flags, `--out` left to the runner.
    pub args: Vec<String>,
}

/// A database of the `databases` axis: `sqlite`, or a PostgreSQL server's URL.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct Database {
    pub url: String,
}

/// The load settings every cell shares: compare's flags of the same names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Load {
    #[serde(default)]
    pub quick: bool,
    /// compare's `--experiments`; absent: compare's default.
    pub experiments: Option<Vec<Kind>>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// compare's `--repeat`: repeats of each throughput level inside one cell.
    pub level_repeats: Option<usize>,
    pub error_rates: Option<Vec<f64>>,
    pub scale_quota: Option<f64>,
    pub process_cpu: Option<f64>,
    pub process_memory: Option<u64>,
}

/// The file as written; [`parse`] turns it into a [`Suite`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    databases: Spanned<Vec<Database>>,
    #[serde(default = "default_targets")]
    targets: Spanned<Vec<String>>,
    topologies: Option<Spanned<Vec<String>>>,
    load: Load,
    #[serde(default = "default_repeats")]
    repeats: Spanned<usize>,
}

/// compare's flags alone, to parse a cell's command line exactly as the child will and to
/// ask which flags compare takes.
#[derive(clap::Parser)]
#[command(name = "shoplab compare")]
struct CompareLine {
    #[command(flatten)]
    _args: crate::compare::CompareArgs,
}

fn default_seed() -> u64 {
    42
}

fn default_targets() -> Spanned<Vec<String>> {
    Spanned::new(0..0, vec!["local".to_owned()])
}

fn default_repeats() -> Spanned<usize> {
    Spanned::new(0..0, 1)
}

impl TryFrom<String> for Database {
    type Error = String;

    fn try_from(text: String) -> Result<Database, String> {
        if text == "sqlite" {
            return Ok(Database { url: text });
        }
        let parsed = url::Url::parse(&text)
            .map_err(|error| format!("{text:?} is neither sqlite nor a URL: {error}"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "{text:?}: a database is sqlite or postgres://user@host:port, not {}://",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("{text:?} names no host"));
        }
        Ok(Database { url: text })
    }
}

impl From<Database> for String {
    fn from(database: Database) -> String {
        database.url
    }
}

impl Database {
    /// The URL without its password, for the plan, the logs and the report.
    pub fn shown(&self) -> String {
        loadtest_platform::local::supervisor::redact(&self.url)
    }
}

/// Whether this binary's `compare` takes `--topologies`: read from compare's own flag
/// definitions, the ones the cells' child processes (this same executable) will parse.
pub(crate) fn compare_takes_topologies() -> bool {
    CompareLine::command()
        .get_arguments()
        .any(|argument| argument.get_long() == Some("topologies"))
}

/// Reads and checks a suite file. Errors name the file and, where the value has one, its line.
pub(crate) fn read(path: &Path) -> anyhow::Result<Suite> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse(&text).with_context(|| format!("suite file {}", path.display()))
}

pub(crate) fn parse(text: &str) -> anyhow::Result<Suite> {
    // toml's errors carry the line and column of the key or value at fault.
    let file: SuiteFile = toml::from_str(text).map_err(|error| anyhow::anyhow!("{error}"))?;
    let at = |span: std::ops::Range<usize>| line_of(text, span.start);
    for (name, span, empty) in [
        (
            "databases",
            file.databases.span(),
            file.databases.get_ref().is_empty(),
        ),
        (
            "targets",
            file.targets.span(),
            file.targets.get_ref().is_empty(),
        ),
    ] {
        anyhow::ensure!(!empty, "{}: the {name} axis is empty", at(span));
    }
    if let Some(topologies) = &file.topologies {
        anyhow::ensure!(
            !topologies.get_ref().is_empty(),
            "{}: the topologies axis is empty; leave it out for compare's own builds",
            at(topologies.span())
        );
        anyhow::ensure!(
            compare_takes_topologies(),
            "{}: this shoplab's compare does not take --topologies yet, so a suite cannot \
             run a topologies axis; leave it out to run compare's monolith and micro builds",
            at(topologies.span())
        );
    }
    anyhow::ensure!(
        *file.repeats.get_ref() >= 1,
        "{}: repeats is at least 1",
        at(file.repeats.span())
    );
    for target in file.targets.get_ref() {
        let platform = loadtest_platform::registration(target)
            .with_context(|| format!("{}: targets", at(file.targets.span())))?;
        // compare refuses these combinations when it starts; refused here, before any cell.
        let postgres = file.databases.get_ref().iter().any(|db| db.url != "sqlite");
        anyhow::ensure!(
            platform.takes_database_server || !postgres,
            "{}: target {target} brings its own database; a postgres:// database runs on \
             the local target only",
            at(file.targets.span())
        );
        anyhow::ensure!(
            platform.takes_process_limits
                || (file.load.process_cpu.is_none() && file.load.process_memory.is_none()),
            "target {target} takes its limits from its own files; process_cpu and \
             process_memory are the local target's"
        );
    }
    let suite = Suite {
        databases: file.databases.into_inner(),
        targets: file.targets.into_inner(),
        topologies: file.topologies.map(Spanned::into_inner),
        load: file.load,
        repeats: file.repeats.into_inner(),
    };
    // Every cell's command line through compare's own parser: a value out of range (an
    // error rate, a quota) is refused now, not when its cell starts an hour from now.
    for cell in suite.cells() {
        let mut line = vec!["shoplab compare".to_owned()];
        line.extend(cell.args.iter().cloned());
        CompareLine::try_parse_from(&line).map_err(|error| {
            anyhow::anyhow!(
                "cell {}: compare refuses its flags ({}): {}",
                cell.name,
                cell.args.join(" "),
                error.render()
            )
        })?;
    }
    Ok(suite)
}

impl Suite {
    /// Every cell, repeats outermost, so an interrupted suite has whole first repeats.
    pub fn cells(&self) -> Vec<Cell> {
        let topologies: Vec<Option<&String>> = match &self.topologies {
            None => vec![None],
            Some(list) => list.iter().map(Some).collect(),
        };
        let mut cells = Vec::new();
        for repeat in 1..=self.repeats {
            for (index, database) in self.databases.iter().enumerate() {
                for target in &self.targets {
                    for topology in &topologies {
                        let mut args = self.load.args();
                        args.extend(["--db".to_owned(), database.url.clone()]);
                        args.extend(["--target".to_owned(), target.clone()]);
                        if let Some(topology) = topology {
                            args.extend(["--topologies".to_owned(), (*topology).clone()]);
                        }
                        cells.push(Cell {
                            name: format!(
                                "{}.{target}.{}.r{repeat}",
                                self.database_label(index),
                                topology.map_or("default".to_owned(), |spec| spec
                                    .replace(',', "_")
                                    .replace('+', "-")),
                            ),
                            database: database.clone(),
                            target: target.clone(),
                            topologies: topology.cloned(),
                            repeat,
                            args,
                        });
                    }
                }
            }
        }
        cells
    }

    /// `sqlite`, `postgres`, or `postgres2`... when several servers are on the axis: a
    /// folder name must not carry a password.
    fn database_label(&self, index: usize) -> String {
        if self.databases[index].url == "sqlite" {
            return "sqlite".to_owned();
        }
        let before = self.databases[..index]
            .iter()
            .filter(|database| database.url != "sqlite")
            .count();
        match before {
            0 => "postgres".to_owned(),
            more => format!("postgres{}", more + 1),
        }
    }

    /// The hash the manifest keeps: of the settings, not of the file's text.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a suite serializes");
        hex::encode(sha2::Sha256::digest(&canonical))
    }
}

impl Load {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.quick {
            args.push("--quick".to_owned());
        }
        if let Some(kinds) = &self.experiments {
            let names: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
            args.extend(["--experiments".to_owned(), names.join(",")]);
        }
        args.extend(["--seed".to_owned(), self.seed.to_string()]);
        if let Some(repeat) = self.level_repeats {
            args.extend(["--repeat".to_owned(), repeat.to_string()]);
        }
        if let Some(rates) = &self.error_rates {
            let rates: Vec<String> = rates.iter().map(f64::to_string).collect();
            args.extend(["--error-rates".to_owned(), rates.join(",")]);
        }
        for (flag, value) in [
            ("--scale-quota", self.scale_quota),
            ("--process-cpu", self.process_cpu),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_owned(), value.to_string()]);
            }
        }
        if let Some(mib) = self.process_memory {
            args.extend(["--process-memory".to_owned(), mib.to_string()]);
        }
        args
    }
}

/// `line N` of a byte offset, for messages about a value toml parsed well.
fn line_of(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}

#[cfg(test)]
mod tests {
    use super::parse;

    const TWO_DATABASES: &str = "databases = [\"sqlite\", \"postgres://me:secret@db:5432\"]\n\
        repeats = 2\n[load]\nquick = true\nexperiments = [\"throughput\"]\n";

    #[test]
    fn every_database_and_repeat_is_a_cell_named_without_the_password() {
        let suite = parse(TWO_DATABASES).expect("a good file");
        let names: Vec<String> = suite.cells().into_iter().map(|cell| cell.name).collect();
        assert_eq!(
            names,
            [
                "sqlite.local.default.r1",
                "postgres.local.default.r1",
                "sqlite.local.default.r2",
                "postgres.local.default.r2"
            ]
        );
        let postgres = &suite.cells()[1];
        assert_eq!(
            postgres.args,
            [
                "--quick",
                "--experiments",
                "throughput",
                "--seed",
                "42",
                "--db",
                "postgres://me:secret@db:5432",
                "--target",
                "local"
            ]
        );
    }

    #[test]
    fn the_fingerprint_follows_the_settings_not_the_comments() {
        let commented = format!("# a comment\n{TWO_DATABASES}\n# another\n");
        let reseeded = format!("{TWO_DATABASES}seed = 7\n");
        let fingerprint = |text: &str| parse(text).expect("a good file").fingerprint();
        assert_eq!(fingerprint(TWO_DATABASES), fingerprint(&commented));
        assert_ne!(fingerprint(TWO_DATABASES), fingerprint(&reseeded));
    }
}

//! `shoplab`: the lab's command. Everything it does lives in the library (`shoplab::cli`).

use clap::Parser;

/// A child the lab started pins itself to the shop's cores (`SHOPLAB_PIN_CPUS`) before its
/// runtime exists, so that tokio sizes its worker pool to those cores
/// (`available_parallelism` reads the thread's affinity, and a cgroup's CPU quota where there
/// is one), as Go's runtime sizes `GOMAXPROCS`. Pinned after the runtime started, a shop
/// process on one core kept a worker per core of the machine: two workers taking turns on
/// one core, waking each other through the kernel for work either could have done. That cost
/// the microservices, eight processes handing each request along, a quarter of their
/// throughput, and the monolith nothing measurable (`compare --quick --experiments
/// throughput` at 16 users, 2026-12-07: 1129 against 1519 req/s, and 3116 against 3110).
fn main() -> anyhow::Result<()> {
    let cli = shoplab::cli::Cli::parse();
    loadtest_platform::pinning::pin_from_env()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(shoplab::cli::run(cli))
}

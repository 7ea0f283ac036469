//! Makes `CALLS` calls of one hop variant after a warm-up, for callgrind to count the
//! instructions they take: `bench/hop-instructions.sh` runs this twice per variant, with
//! `CALLS` and with twice as many, and divides the difference by `CALLS`, so the lab's start
//! (seeding two catalogues, binding, the first connection) cancels out.
//!
//! Why instructions, and why callgrind: these machines are shared VMs whose timings move by
//! tens of percent between runs, and `perf` has no hardware counters here. Callgrind counts
//! every instruction each thread runs (the caller's, the service runtime's, sqlx's SQLite
//! worker's), the same count on every run; it does not see the kernel, so a syscall or a
//! thread wake-up costs the instructions around it, not its wait. Criterion (`benches/hop.rs`)
//! measures the time; this says where the instructions go.
//!
//! Usage: `hop-instructions <in_process|http_loopback|axum_hello|shop_server_hello|shop_layers_hello> <calls>`

#[path = "../hop/lab.rs"]
mod lab;

use lab::{Hello, Lab, product_ids};

/// Calls made before the measured ones: connections opened, tokens signed and verified
/// once, the allocator's and SQLite's caches warm, as they are in criterion's warm-up.
const WARM_UP: usize = 500;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hop-instructions <in_process|http_loopback|axum_hello|shop_server_hello|shop_layers_hello> <calls>";
    let variant = args
        .next()
        .and_then(|name| Variant::named(&name))
        .expect(usage);
    let calls: usize = args
        .next()
        .and_then(|calls| calls.parse().ok())
        .expect(usage);
    let lab = Lab::start();
    for count in [WARM_UP, calls] {
        run(&lab, variant, count);
    }
    lab.stop();
}

#[derive(Clone, Copy)]
enum Variant {
    InProcess,
    HttpLoopback,
    Hello(Hello),
}

impl Variant {
    fn named(name: &str) -> Option<Variant> {
        match name {
            "in_process" => Some(Variant::InProcess),
            "http_loopback" => Some(Variant::HttpLoopback),
            _ => Hello::ALL
                .into_iter()
                .find(|server| server.name() == name)
                .map(Variant::Hello),
        }
    }
}

/// `count` sequential calls of `variant` on the caller's runtime, as criterion makes them.
fn run(lab: &Lab, variant: Variant, count: usize) {
    lab.caller.block_on(async {
        let mut ids = product_ids();
        for _ in 0..count {
            let id = ids.next().unwrap_or(1);
            match variant {
                Variant::InProcess => drop(lab.in_process.get(id).await.expect("the product")),
                Variant::HttpLoopback => drop(lab.over_http.get(id).await.expect("the product")),
                Variant::Hello(server) => drop(Lab::hello(lab.hello_client(server)).await),
            }
        }
    });
}

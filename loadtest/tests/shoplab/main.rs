//! The `shoplab` crate's tests: the architecture rules, and the microservices build run as
//! real processes by the supervisor — started, browsed, bought from, broken and healed.

mod architecture;
mod check; // the invariant checker: crafted snapshots per invariant, and `shoplab check` end to end
mod cli; // what the command line refuses before anything runs, gates and exit codes, load --json, help headings, diff refusals and verdicts
mod command;
mod deployment;
mod faults;
mod generators; // several shoplab load processes: shares, the agreed start, shards merged
mod kubernetes; // deploy/kubernetes held to docker-compose.yml, and the kubernetes target through a fake kubectl
mod lab; // the lab's commands end to end: compare's results folder, load then check, bad flags
mod limits; // per-process cgroup limits: confined from the start, OOM-killed past memory, restarts confined
mod open_loop; // open-loop load against a real monolith: arrivals counted, drops at the cap, latency from due time
mod orchestration; // kill, restart, pause and in-process faults on both builds through the lab's Target
mod report; // the report and diff rendered from a committed results.json: charts, pages, commands, bad input
mod rolling; // rolling deploys of the public processes, of a service and of a group's process under load, and a rollback
mod saga_crash;
mod spectrum; // compare --topologies: three topologies' throughput as real processes and the spectrum in the report; what it still refuses
mod spread; // requests per replica, counted by the front door and by the gateway // orders killed mid-checkout; the recovered saga is judged by the audit
mod suite; // shoplab suite's refusals of a bad suite file, before any cell runs
mod support;
mod topology; // a topology between the builds as real group processes behind the gateway, a group's process killed through the lab's Target; serve topology's refusals
mod trust; // every attack on a service's own port (no, forged, expired, misaddressed or unallowed token) refused, nothing changed

//! The catalogue's table: one `FaultSpec` per kind, with the reason for each default.
//!
//! To add a fault kind: a spec here, a variant of `Fault` (with its name) in
//! `catalogue.rs`, and a mechanism wherever a platform realizes it. The catalogue's tests
//! check that the two agree.

use super::{Fault, FaultSpec, Layer, ParamSpec, Range, Unit};

const LATENCY_MS: ParamSpec = ParamSpec {
    name: "ms",
    unit: Unit::Milliseconds,
    // 300 ms: far above any call's own time (so it shows), far below the hop timeout of
    // 2000 ms (so callers wait rather than give up). The lab's experiments were built on it.
    range: Range::Whole {
        default: 300,
        min: 1,
        max: 60_000,
    },
    about: "how long each call waits before it is let through",
};

pub(super) static CATALOGUE: &[FaultSpec] = &[
    FaultSpec {
        name: "kill",
        layer: Layer::Process,
        about: "kill -9 the process that runs the context (the whole shop in the monolith); the platform's self-healing starts it again",
        params: &[],
        build: |_| Fault::Kill,
    },
    FaultSpec {
        name: "pause",
        layer: Layer::Process,
        about: "stop the process that runs the context (SIGSTOP, or pausing its container) until the heal resumes it",
        params: &[],
        build: |_| Fault::Pause,
    },
    FaultSpec {
        name: "latency",
        layer: Layer::InProcess,
        about: "every call into the context waits before it runs",
        params: &[LATENCY_MS],
        build: |filled| Fault::Latency {
            ms: filled.whole("ms"),
        },
    },
    FaultSpec {
        name: "errors",
        layer: Layer::InProcess,
        about: "a share of the calls into the context fail with unavailable (503)",
        params: &[ParamSpec {
            name: "rate",
            unit: Unit::Fraction,
            // Half, not all: a context that fails every call only shows what a dead one
            // does, while half shows whether callers retry, degrade or pass it on.
            range: Range::Number {
                default: 0.5,
                min: 0.01,
                max: 1.0,
            },
            about: "the share of calls that fail",
        }],
        build: |filled| Fault::Errors {
            rate: filled.number("rate"),
        },
    },
    FaultSpec {
        name: "hang",
        layer: Layer::InProcess,
        about: "calls into the context wait until the fault is cleared or expires",
        params: &[],
        build: |_| Fault::Hang,
    },
    FaultSpec {
        name: "abort",
        layer: Layer::InProcess,
        about: "the next call into the context aborts the process that runs it; the platform's self-healing starts it again",
        params: &[],
        build: |_| Fault::Abort,
    },
    FaultSpec {
        name: "cpu_hog",
        layer: Layer::InProcess,
        about: "busy OS threads spin in the process that runs the context until the fault ends",
        params: &[ParamSpec {
            name: "threads",
            unit: Unit::Threads,
            // Two: on the lab's 2-core machines that is every core, so the hog competes
            // with the shop for all of them.
            range: Range::Whole {
                default: 2,
                min: 1,
                max: 16,
            },
            about: "how many threads spin",
        }],
        build: |filled| Fault::CpuHog {
            threads: filled.whole("threads"),
        },
    },
    FaultSpec {
        name: "leak",
        layer: Layer::InProcess,
        about: "the process that runs the context allocates and touches memory at a steady rate, up to a cap, and frees it when the fault ends",
        params: &[
            ParamSpec {
                name: "mb_per_sec",
                unit: Unit::MebibytesPerSecond,
                // 64 MiB/s reaches the cap within a fault window of a few seconds.
                range: Range::Whole {
                    default: 64,
                    min: 1,
                    max: 512,
                },
                about: "how fast memory is taken",
            },
            ParamSpec {
                name: "max_mb",
                unit: Unit::Mebibytes,
                range: Range::Whole {
                    default: 256,
                    min: 1,
                    max: 4096,
                },
                about: "the most memory the leak holds",
            },
        ],
        build: |filled| Fault::Leak {
            mb_per_sec: filled.whole("mb_per_sec"),
            max_mb: filled.whole("max_mb"),
        },
    },
    FaultSpec {
        name: "net_latency",
        layer: Layer::Network,
        about: "a fault proxy holds back every answer from the context's service (microservices only: the monolith's contexts call each other in-process)",
        // The same default as the in-process `latency`, so the two can be compared.
        params: &[LATENCY_MS],
        build: |filled| Fault::NetLatency {
            ms: filled.whole("ms"),
        },
    },
    FaultSpec {
        name: "net_reset",
        layer: Layer::Network,
        about: "a fault proxy closes every connection to the context's service, open or new, before anything passes",
        params: &[],
        build: |_| Fault::NetReset,
    },
    FaultSpec {
        name: "net_cut",
        layer: Layer::Network,
        about: "a fault proxy accepts connections to the context's service and lets nothing pass either way: a blackhole",
        params: &[],
        build: |_| Fault::NetCut,
    },
    FaultSpec {
        name: "net_bandwidth",
        layer: Layer::Network,
        about: "a fault proxy lets answers from the context's service flow at a capped rate",
        params: &[ParamSpec {
            name: "kib_per_sec",
            unit: Unit::KibibytesPerSecond,
            // 64 KiB/s: a product page (a few KiB) still arrives, a listing visibly slows.
            range: Range::Whole {
                default: 64,
                min: 1,
                max: 1_048_576,
            },
            about: "the most answer bytes passed per second",
        }],
        build: |filled| Fault::NetBandwidth {
            kib_per_sec: filled.whole("kib_per_sec"),
        },
    },
    FaultSpec {
        name: "net_truncate",
        layer: Layer::Network,
        about: "a fault proxy closes every connection to the context's service once this many bytes of answer have passed: answers cut off mid-body",
        params: &[ParamSpec {
            name: "bytes",
            unit: Unit::Bytes,
            // 512 bytes: past the status line and headers of every answer, short of most
            // bodies, so the caller sees a broken answer rather than none.
            range: Range::Whole {
                default: 512,
                min: 1,
                max: 1_073_741_824,
            },
            about: "answer bytes passed on a connection before the proxy closes it",
        }],
        build: |filled| Fault::NetTruncate {
            bytes: filled.whole("bytes"),
        },
    },
    FaultSpec {
        name: "cpu_limit",
        layer: Layer::Resource,
        about: "the process that runs the context (every replica; the whole monolith) gets a CPU quota",
        params: &[ParamSpec {
            name: "cores",
            unit: Unit::Cores,
            // A fifth of one core: enough to answer a trickle, far too little for the
            // steady load. The smallest quota is 1 ms per 100 ms period.
            range: Range::Number {
                default: 0.2,
                min: 0.01,
                max: 16.0,
            },
            about: "the CPU the process may use",
        }],
        build: |filled| Fault::CpuLimit {
            cores: filled.number("cores"),
        },
    },
    FaultSpec {
        name: "db_down",
        layer: Layer::Dependency,
        about: "a fault proxy in front of the database holding the context's data drops every connection, new ones too (PostgreSQL only: SQLite is embedded)",
        params: &[],
        build: |_| Fault::DbDown,
    },
];

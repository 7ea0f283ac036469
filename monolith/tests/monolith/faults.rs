//! Faults that only a real process can show: in the monolith they hit the one shared
//! process, whichever context they were aimed at.

use std::time::Duration;

use crate::process::Process;

#[tokio::test]
async fn an_abort_fault_in_recommendations_takes_the_whole_monolith_down() {
    let mut monolith = Process::start().await;
    monolith
        .inject(serde_json::json!({"context": "recommendations", "kind": "abort"}))
        .await;
    let product_page = monolith
        .client
        .get(monolith.url("/api/products/1"))
        .send()
        .await;
    assert!(product_page.is_err(), "the request dies with the process");
    let status = monolith.wait_exit(Duration::from_secs(10));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(nix::libc::SIGABRT),
        "the process aborted: {status}"
    );
    let catalog = monolith
        .client
        .get(monolith.url("/api/products"))
        .send()
        .await;
    assert!(
        catalog.is_err(),
        "an unrelated context is gone too: one process, one fate"
    );
}

#[tokio::test]
async fn a_cpu_hog_burns_threads_in_the_shared_process_until_healed() {
    let monolith = Process::start().await;
    let threads_before = monolith.proc_status("Threads");
    monolith.inject(serde_json::json!({"context": "recommendations", "kind": "cpu_hog", "params": {"threads": 2}})).await;
    monolith
        .eventually(
            Duration::from_secs(10),
            "two hog threads to start",
            |process| process.proc_status("Threads") >= threads_before + 2,
        )
        .await;
    monolith.heal().await;
    monolith
        .eventually(
            Duration::from_secs(10),
            "the hog threads to stop",
            |process| process.proc_status("Threads") < threads_before + 2,
        )
        .await;
}

#[tokio::test]
async fn a_leak_grows_the_monolith_rss_and_healing_gives_it_back() {
    let monolith = Process::start().await;
    let rss_before_kb = monolith.proc_status("VmRSS");
    monolith
        .inject(serde_json::json!({"context": "cart", "kind": "leak", "params": {"mb_per_sec": 200, "max_mb": 64}}))
        .await;
    monolith
        .eventually(
            Duration::from_secs(20),
            "RSS to grow by 48 MiB",
            |process| process.proc_status("VmRSS") >= rss_before_kb + 48 * 1024,
        )
        .await;
    monolith.heal().await;
    monolith
        .eventually(Duration::from_secs(20), "RSS to fall back", |process| {
            process.proc_status("VmRSS") < rss_before_kb + 16 * 1024
        })
        .await;
}

//! Rolling deploys under load lose nothing: the new process is started and ready before
//! traffic moves to it, and the old one drains what it was answering — on both builds and
//! for a group's process on a topology between them. Also the rollback: a release that
//! never gets ready is abandoned while the old process keeps serving.

use std::time::{Duration, Instant};

use loadtest_lab::journeys::{Recorder, Shopfront};
use loadtest_lab::load::{self, LoadPlan};
use loadtest_platform::Target;
use loadtest_results::component::{Build, Component};
use loadtest_results::history::Outcome;

use crate::support::{
    SEED, pid_named, pid_of, process_is_gone, start_target, start_topology_target,
};

/// Both journeys (three browsers, one buyer) against the front door for `seconds`, while `deploy`
/// runs; returns the requests that did not succeed.
async fn load_during(
    target: &mut Target,
    seconds: u64,
    deploy: impl AsyncFnOnce(&mut Target),
) -> (usize, Vec<String>) {
    let plan = LoadPlan {
        base_url: target.url().to_owned(),
        users: 4,
        duration: Duration::from_secs(seconds),
        rate: None,
        request_timeout: Duration::from_secs(5),
    };
    let shop = Shopfront {
        products: 20,
        users: 2,
        first_user: 0,
        password: format!("shoplab-{SEED}"),
        // One buyer among the four users: the small shop has two seeded users, and two
        // buyers sharing one cart would check out each other's items (422, empty cart).
        browse_weight: 3,
        buy_weight: 1,
    };
    let recorder = Recorder::new(Instant::now());
    let events = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        deploy(target).await;
    };
    let (run, ()) = tokio::join!(load::run(&plan, &shop, &recorder), events);
    let run = run.expect("the load runs");
    let failures = run
        .records
        .iter()
        .filter(|record| record.outcome != Outcome::Ok)
        .map(|record| {
            format!(
                "{} at {} ms: {}",
                record.transaction, record.t_ms, record.status
            )
        })
        .collect();
    (run.records.len(), failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_of_each_public_process_under_load_fails_no_request() {
    let _quiet = crate::support::exclusive().await;
    for (build, component) in [
        (Build::Monolith, Component::Monolith),
        (Build::Micro, Component::Gateway),
    ] {
        let mut target = start_target(build).await;
        let old = pid_of(&target, component).await;
        let (requests, failures) = load_during(&mut target, 4, async |target| {
            target.roll(component).await.expect("the rolling deploy");
        })
        .await;
        let new = pid_of(&target, component).await;
        assert!(
            requests > 100,
            "{build}: only {requests} requests were sent"
        );
        assert_eq!(
            failures,
            Vec::<String>::new(),
            "{build}: requests failed during the roll"
        );
        assert_ne!(old, new, "{build}: a new process serves");
        assert!(process_is_gone(old), "{build}: the old process was stopped");
        target.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_of_a_service_moves_its_callers_without_a_failed_request() {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_target(Build::Micro).await;
    let catalog = Component::Service(domain::Context::Catalog);
    let old = pid_of(&target, catalog).await;
    let (requests, failures) = load_during(&mut target, 4, async |target| {
        target.roll(catalog).await.expect("the rolling deploy");
    })
    .await;
    assert!(requests > 100, "only {requests} requests were sent");
    assert_eq!(failures, Vec::<String>::new());
    assert!(process_is_gone(old), "the old catalog was stopped");
    // The gateway's admin fan-out follows the move too: an audit reaches the new catalog.
    let audit = target
        .audit()
        .await
        .expect("the audit reaches every service");
    assert_eq!(audit.stock.len(), 20);
    target.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_never_gets_ready_is_rolled_back_and_the_old_process_keeps_serving() {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_target(Build::Monolith).await;
    let old = pid_of(&target, Component::Monolith).await;
    let (_, failures) = load_during(&mut target, 3, async |target| {
        let why = target
            .roll_bad_release(Component::Monolith)
            .await
            .expect("the bad release fails to start, and that is reported");
        assert!(!why.is_empty());
    })
    .await;
    assert_eq!(failures, Vec::<String>::new());
    assert_eq!(
        pid_of(&target, Component::Monolith).await,
        old,
        "the old process still serves"
    );
    target.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_of_a_group_process_under_load_fails_no_request() {
    let _quiet = crate::support::exclusive().await;
    // coarse: storefront (catalog, recommendations), stock (inventory), checkout (cart,
    // orders, payments), accounts (users). Rolling `payments` rolls checkout, which hosts
    // orders (its upstreams come from the topology as it stands); rolling `inventory` rolls
    // stock, which checkout's orders calls and must be told about.
    let mut target = start_topology_target("coarse").await;
    let payments = Component::Service(domain::Context::Payments);
    let inventory = Component::Service(domain::Context::Inventory);
    assert_eq!(target.process_name(payments), "checkout");
    assert_eq!(target.process_name(inventory), "stock");
    let checkout = pid_named(&target, "checkout").await;
    let stock = pid_named(&target, "stock").await;
    let storefront = pid_named(&target, "storefront").await;
    let (requests, failures) = load_during(&mut target, 6, async |target| {
        target
            .roll(payments)
            .await
            .expect("the rolling deploy of checkout");
        tokio::time::sleep(Duration::from_millis(500)).await;
        target
            .roll(inventory)
            .await
            .expect("the rolling deploy of stock");
    })
    .await;
    assert!(requests > 100, "only {requests} requests were sent");
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "requests failed during the rolls"
    );
    assert!(process_is_gone(checkout), "the old checkout was stopped");
    assert!(process_is_gone(stock), "the old stock was stopped");
    assert_ne!(pid_named(&target, "checkout").await, checkout);
    assert_ne!(pid_named(&target, "stock").await, stock);
    assert_eq!(
        pid_named(&target, "storefront").await,
        storefront,
        "a group no roll named kept its process"
    );
    // The gateway's admin fan-out follows both moves: the audit reaches every new process.
    let audit = target.audit().await.expect("the audit reaches every group");
    assert_eq!(audit.stock.len(), 20);
    // The gateway itself is not rolled here: no front door moves the load off it.
    let refused = target
        .roll(Component::Gateway)
        .await
        .expect_err("the gateway has no front door to roll behind");
    assert!(format!("{refused:#}").contains("front door"), "{refused:#}");
    target.stop().await.expect("stop");
}

//! The `orders` service: checkout as an orchestrated saga, and reading one's orders.
//!
//! This is the microservices side of the one difference the lab measures. The monolith
//! checks out in one ACID transaction (`monolith/src/checkout.rs`); here no transaction spans
//! `cart`, `catalog`, `inventory` and `payments`, so `orders` drives the checkout step by
//! step, records each step in its own database before the next remote call, compensates
//! what it held when a step fails, and finishes after a crash what a dead process started.
//! [`saga`] holds the steps and the compensation, [`recovery`] the loop that finishes
//! abandoned sagas.
//!
//! In a topology whose process hosts `orders` with every context checkout touches, that one
//! process holds all their tables in one database, and [`mount`] runs the monolith's local
//! checkout instead (`domain::topology::Checkout`): the saga is the price of the boundary,
//! paid only where there is one.

use std::sync::Arc;
use std::time::Duration;

use domain::Context;
use domain::orders::Orders;
use domain::topology::Checkout;
use micro_kit::{Routes, Service};
use monolith::MonolithOrders;

pub mod recovery;
pub mod saga;

pub use saga::SagaOrders;

/// The orders' part of any process that hosts them, checking out as the topology's rule
/// says (`domain::topology::Checkout`): where the process also hosts cart, catalog,
/// inventory and payments, and so holds all their tables in its one database, the monolith's
/// local checkout (`checkout_mode` still chooses split or single) with its recovery; anywhere
/// else the saga, over those contexts in-process where they are co-located and over HTTP
/// where they are not, with its recovery. `/ready` then requires the remote ones.
pub fn mount(service: &mut Service) -> anyhow::Result<Routes> {
    let checkout = service.group.checkout();
    // Said once at start: which side of the lab's one deliberate difference this process is.
    tracing::info!(service = %service.group.name(), checkout = ?checkout, "orders checkout chosen by the topology");
    let orders: Arc<dyn Orders> = match checkout {
        Checkout::Local => {
            let orders = Arc::new(MonolithOrders::new(
                service.db.clone(),
                service.faults.clone(),
                &service.settings,
            ));
            service.spawn(recovery::run_local(orders.clone()));
            orders
        }
        Checkout::Saga => {
            let me = Context::Orders;
            let upstreams = saga::Upstreams {
                cart: service.cart(me)?,
                catalog: service.catalog(me)?,
                inventory: service.inventory(me)?,
                payments: service.payments(me)?,
            };
            let recover_after = recovery::recover_after(&service.settings);
            let orders = Arc::new(SagaOrders::new(
                service.db.clone(),
                service.faults.clone(),
                upstreams,
                service.metrics.checkout(),
                service.settings.reservation_ttl_ms,
                recover_after,
            ));
            service.spawn(recovery::run(orders.clone(), recover_after));
            orders
        }
    };
    Ok(micro_rpc::orders::routes(orders))
}

/// Serves orders alone on `listener` until `shutdown` resolves: the saga. Needs `upstreams`
/// for `cart`, `catalog`, `inventory` and `payments`; `/ready` answers only while all four
/// do.
pub async fn serve(
    settings: api::Settings,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    micro_kit::serve_alone(Context::Orders, mount, settings, listener, shutdown).await
}

/// How often the recovery loop looks for abandoned sagas.
pub const RECOVER_EVERY: Duration = Duration::from_millis(500);

//! How a hosted context reaches another: in-process when its process hosts it too, over
//! HTTP otherwise.
//!
//! In-process, the callee is the same `store` implementation its own routes serve, over the
//! process's one database and fault registry: a call costs what it costs in the monolith,
//! and a fault switched on for the callee reaches its co-located callers as it reaches the
//! monolith's. Remote, it is the `micro_rpc` client with all its resilience (retries under a
//! budget, breakers, the deadline), signed as the calling context, and the process's
//! `/ready` requires it. The caller sees one domain trait either way.

use std::sync::Arc;
use std::time::Duration;

use domain::Context;
use domain::cart::Cart;
use domain::catalog::Catalog;
use domain::inventory::Inventory;
use domain::payments::Payments;
use micro_rpc::Upstream;
use micro_rpc::cart::CartClient;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::inventory::InventoryClient;
use micro_rpc::payments::PaymentsClient;
use store::cart::SqlCart;
use store::catalog::SqlCatalog;
use store::inventory::SqlInventory;
use store::payments::SqlPayments;

use crate::Service;

impl Service {
    /// Whether `context` runs in this process, and so is called in-process.
    pub fn hosts(&self, context: Context) -> bool {
        self.group.contains(context)
    }

    /// `cart` as `caller` reaches it.
    pub fn cart(&mut self, caller: Context) -> anyhow::Result<Arc<dyn Cart>> {
        Ok(if self.hosts(Context::Cart) {
            Arc::new(SqlCart::new(self.db.clone(), self.faults.clone()))
        } else {
            Arc::new(CartClient(self.remote(caller, Context::Cart)?))
        })
    }

    /// `catalog` as `caller` reaches it.
    pub fn catalog(&mut self, caller: Context) -> anyhow::Result<Arc<dyn Catalog>> {
        Ok(if self.hosts(Context::Catalog) {
            Arc::new(SqlCatalog::new(self.db.clone(), self.faults.clone()))
        } else {
            Arc::new(CatalogClient(self.remote(caller, Context::Catalog)?))
        })
    }

    /// `inventory` as `caller` reaches it. In-process, no sweeper comes with it: the
    /// inventory's own mount runs the one that releases expired reservations.
    pub fn inventory(&mut self, caller: Context) -> anyhow::Result<Arc<dyn Inventory>> {
        Ok(if self.hosts(Context::Inventory) {
            Arc::new(SqlInventory::new(self.db.clone(), self.faults.clone()))
        } else {
            Arc::new(InventoryClient(self.remote(caller, Context::Inventory)?))
        })
    }

    /// `payments` as `caller` reaches it.
    pub fn payments(&mut self, caller: Context) -> anyhow::Result<Arc<dyn Payments>> {
        Ok(if self.hosts(Context::Payments) {
            Arc::new(self.sql_payments())
        } else {
            Arc::new(PaymentsClient(self.remote(caller, Context::Payments)?))
        })
    }

    /// The payments implementation over this process's database, behind the simulated
    /// provider latency (`payments_latency_ms`) wherever it runs.
    pub fn sql_payments(&self) -> SqlPayments {
        let latency = Duration::from_millis(self.settings.payments_latency_ms);
        SqlPayments::new(self.db.clone(), self.faults.clone(), latency)
    }

    /// The client for a remote context, which `/ready` then requires.
    fn remote(&mut self, caller: Context, callee: Context) -> anyhow::Result<Upstream> {
        let upstream = self.upstream(caller, callee)?;
        self.required.push(upstream.clone());
        Ok(upstream)
    }
}

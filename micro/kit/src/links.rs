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

#[cfg(test)]
mod tests {
    use domain::topology::Group;
    use domain::trust::Keyring;
    use domain::users::UserId;

    use super::*;

    const USER: UserId = 1;

    /// `group` over a fresh database in `folder`, told where `upstreams` are.
    async fn open(group: &str, folder: &tempfile::TempDir, upstreams: &[(&str, &str)]) -> Service {
        let group = Group::parse(group).expect("a group");
        let keyring = Keyring::generate();
        let settings = api::Settings {
            db: format!("sqlite://{}", folder.path().join("group.db").display()),
            upstreams: upstreams
                .iter()
                .map(|(context, url)| ((*context).to_owned(), vec![(*url).to_owned()]))
                .collect(),
            service_key: Some(keyring.group_key(group.contexts())),
            service_public_keys: Some(keyring.public_keys()),
            ..api::Settings::default()
        };
        Service::open(group, settings)
            .await
            .expect("the group opens")
    }

    #[tokio::test]
    async fn a_co_located_context_is_called_in_process_and_a_remote_one_needs_its_address() {
        let folder = tempfile::tempdir().expect("a temp dir");
        let mut service = open("cart+orders", &folder, &[]).await;
        // No address for cart was given: the answer comes from the group's own database.
        let cart = service.cart(Context::Orders).expect("cart is co-located");
        assert!(cart.lines(USER).await.expect("an empty cart").is_empty());
        assert!(service.required.is_empty(), "nothing remote is required");
        let remote = service
            .catalog(Context::Orders)
            .err()
            .expect("catalog is not");
        assert!(
            remote
                .to_string()
                .contains("no upstream configured for catalog"),
            "{remote}"
        );
    }

    #[tokio::test]
    async fn a_remote_context_is_a_client_that_ready_then_requires() {
        let folder = tempfile::tempdir().expect("a temp dir");
        let mut service = open("orders", &folder, &[("payments", "http://127.0.0.1:9")]).await;
        service.payments(Context::Orders).expect("a client");
        assert_eq!(service.required.len(), 1);
    }
}

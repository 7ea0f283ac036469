-- The PostgreSQL variant's databases, one per process as the lab makes them
-- (loadtest/platform/src/local/supervisor/database.rs): the monolith's, and one per context. The official
-- image runs this once, when its data volume is empty; the shop runs its own migrations.
CREATE DATABASE shoplab_monolith;
CREATE DATABASE shoplab_catalog;
CREATE DATABASE shoplab_inventory;
CREATE DATABASE shoplab_cart;
CREATE DATABASE shoplab_orders;
CREATE DATABASE shoplab_payments;
CREATE DATABASE shoplab_users;
CREATE DATABASE shoplab_recommendations;

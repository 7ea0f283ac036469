//! The yardstick for `GET /api/products/{id}`: the least code that answers that request
//! from the shop's SQLite file with the same three queries and the same JSON.
//!
//! It exists so `bench/product-detail.sh` can say how much the monolith's layers (settings,
//! context traits, error mapping, middleware, metrics, tracing) cost on its hottest read: the
//! issue asks the monolith to reach at least 0.8x this handler's throughput, measured side by
//! side in one run. That comparison is only worth something while this stays minimal, so it
//! deliberately has no middleware, no metrics, no tracing, no settings file and no caching;
//! please keep it that way. The one concession is `GET /ready`, which the script polls before
//! it sends load (no sleeps standing in for readiness).
//!
//! ```text
//! bench-baseline --port 8081 --db sqlite://path/to/shop.db
//! ```
//!
//! The file must already exist and hold the schema the monolith creates; it is opened
//! read-only, so the baseline can never change what the monolith serves.

use std::net::SocketAddr;
use std::str::FromStr;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde::Serialize;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Serve `GET /api/products/{id}` straight from the shop's SQLite file.
#[derive(Debug, Parser)]
#[command(name = "bench-baseline")]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one (the chosen address is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The monolith's database, e.g. `sqlite://shop.db`; opened read-only, never created.
    #[arg(long)]
    db: String,
    /// Connections in the read pool. The default matches the monolith's `db_max_connections`
    /// default (8), so neither side wins by holding more SQLite connections.
    #[arg(long, default_value_t = 8)]
    max_connections: u32,
}

/// The product page, in the same shape and field order as the monolith's answer.
#[derive(Debug, Serialize)]
struct ProductDetail {
    id: i64,
    sku: String,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
    availability: &'static str,
    recommendations: Vec<Recommendation>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Recommendation {
    product_id: i64,
    name: String,
    score: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct ProductRow {
    id: i64,
    sku: String,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
}

/// What a request can end in besides a product page, with the shop's stable error body.
#[derive(Debug)]
enum Failure {
    NotFound(i64),
    Database(sqlx::Error),
}

/// Units at or below this count are shown as `low` (the domain's `LOW_STOCK_THRESHOLD`,
/// repeated here so the baseline does not depend on any shop crate).
const LOW_STOCK_THRESHOLD: i64 = 5;

/// How many recommendations a product page shows (the domain's
/// `RECOMMENDATIONS_PER_PRODUCT`).
const RECOMMENDATIONS_PER_PRODUCT: i64 = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = open_read_pool(&args.db, args.max_connections).await?;
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .context("reading the journal mode")?;

    let app = Router::new()
        .route("/api/products/{id}", get(product_detail))
        .route("/ready", get(ready))
        .with_state(pool);

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let address = listener.local_addr().context("reading the bound address")?;
    // The bench script waits for this line and records the journal mode and pool size.
    println!(
        "bench-baseline listening on http://{address} (journal_mode={journal_mode}, \
         max_connections={})",
        args.max_connections
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // Only Ctrl-C: the script stops this process with SIGTERM, whose default action
            // ends it at once, which is all a read-only baseline needs.
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}

/// A read-only pool on an existing file. The journal mode is not set here: a read-only
/// connection cannot change it, and the monolith already put the file in WAL mode, which is
/// what lets these readers run beside its writer.
async fn open_read_pool(db: &str, max_connections: u32) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(db)
        .with_context(|| format!("parsing database url {db}"))?
        .read_only(true)
        .create_if_missing(false);
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .with_context(|| format!("opening {db} read-only"))
}

/// `GET /api/products/{id}`: the product, then its stock and its recommendations side by
/// side, the same query pattern as the monolith's handler (`api::public::product_detail`),
/// so the comparison measures the layers around the queries and not how they are scheduled.
async fn product_detail(
    State(pool): State<SqlitePool>,
    Path(id): Path<i64>,
) -> Result<Json<ProductDetail>, Failure> {
    let product: ProductRow = sqlx::query_as(
        "SELECT id, sku, name, description, category, price_cents FROM products WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&pool)
    .await?
    .ok_or(Failure::NotFound(id))?;

    let stock = sqlx::query_scalar::<_, i64>("SELECT available FROM stock WHERE product_id = ?")
        .bind(id)
        .fetch_optional(&pool);
    let recommendations = sqlx::query_as::<_, Recommendation>(
        "SELECT recommended_id AS product_id, name, score FROM recommendations \
         WHERE product_id = ? ORDER BY score DESC, recommended_id ASC LIMIT ?",
    )
    .bind(id)
    .bind(RECOMMENDATIONS_PER_PRODUCT)
    .fetch_all(&pool);
    let (available, recommendations) = tokio::join!(stock, recommendations);

    Ok(Json(ProductDetail {
        id: product.id,
        sku: product.sku,
        name: product.name,
        description: product.description,
        category: product.category,
        price_cents: product.price_cents,
        availability: availability(available?),
        recommendations: recommendations?,
    }))
}

/// `GET /ready`: the database answers.
async fn ready(State(pool): State<SqlitePool>) -> Result<&'static str, Failure> {
    sqlx::query("SELECT 1").execute(&pool).await?;
    Ok("ready")
}

/// A product without a stock row is `unknown`, as on the monolith's page.
fn availability(available: Option<i64>) -> &'static str {
    match available {
        None => "unknown",
        Some(..=0) => "out_of_stock",
        Some(1..=LOW_STOCK_THRESHOLD) => "low",
        Some(_) => "in_stock",
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Failure {
        Failure::Database(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Failure::NotFound(id) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("product {id} not found"),
            ),
            Failure::Database(error) => {
                // Printed, not traced: the baseline has no tracing on purpose.
                eprintln!("database error: {error}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        let body = serde_json::json!({ "error": { "code": code, "message": message } });
        (status, Json(body)).into_response()
    }
}

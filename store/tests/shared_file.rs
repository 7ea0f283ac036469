//! Two processes on one SQLite file, as in a rolling deploy (the old and the new process
//! overlap) or the scale experiment (two monoliths): a write transaction that meets the
//! other's writer waits for it, within the busy timeout, instead of failing at once with
//! "database is locked". Two `Db`s on one file are two processes' pools as far as SQLite's
//! locks go: each has its own writer connection.

use std::time::Duration;

use store::{Db, DbOptions};

async fn open(url: &str) -> Db {
    let options = DbOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
    };
    Db::connect(url, &options)
        .await
        .expect("the database opens")
}

async fn stock(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT quantity FROM stock WHERE id = 1")
        .fetch_one(db.writer())
        .await
        .expect("the stock row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_transaction_waits_for_another_process_writer_instead_of_failing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let first = open(&url).await;
    let second = open(&url).await;
    sqlx::query("CREATE TABLE stock (id INTEGER PRIMARY KEY, quantity INTEGER NOT NULL)")
        .execute(first.writer())
        .await
        .expect("the table");
    sqlx::query("INSERT INTO stock (id, quantity) VALUES (1, 10)")
        .execute(first.writer())
        .await
        .expect("the row");

    // The first process is inside a write: it has written and not yet committed.
    let mut holding = first.begin_write().await.expect("the first transaction");
    sqlx::query("UPDATE stock SET quantity = quantity - 1 WHERE id = 1")
        .execute(&mut *holding)
        .await
        .expect("the first write");

    // The second process reads, then writes, as the checkout's steps do (read the stock,
    // then take from it). With a deferred BEGIN its write met the first's lock and failed
    // at once, whatever the busy timeout.
    let mut taking = tokio::spawn(async move {
        let mut transaction = second.begin_write().await?;
        let quantity: i64 = sqlx::query_scalar("SELECT quantity FROM stock WHERE id = 1")
            .fetch_one(&mut *transaction)
            .await?;
        sqlx::query("UPDATE stock SET quantity = $1 WHERE id = 1")
            .bind(quantity - 1)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok::<i64, sqlx::Error>(quantity)
    });

    // While the first holds its lock the second cannot have committed: it either failed
    // (the bug) or is still waiting. Half a second is what it gets to show a failure; on a
    // machine too slow to reach its write in that time this test cannot tell the two apart,
    // but it never passes a transaction that failed.
    if let Ok(finished) = tokio::time::timeout(Duration::from_millis(500), &mut taking).await {
        let outcome = finished.expect("the second transaction's task");
        panic!("the second process's write did not wait for the first's: {outcome:?}");
    }
    holding.commit().await.expect("the first commits");
    let read = taking
        .await
        .expect("the second transaction's task")
        .expect("the second transaction, once the first committed");

    assert_eq!(read, 9, "the second read after the first committed");
    assert_eq!(stock(&first).await, 8, "both writes count");
}

//! The token secret across restarts: without `SHOPLAB_TOKEN_SECRET` the one kept in the
//! database signs, so a restart logs nobody out; a configured secret wins over it.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use serde_json::{Value, json};

use crate::process::Process;

/// `--seed 7`: seeded users log in with the seed's password.
const SEED: u64 = 7;

async fn log_in(process: &Process) -> String {
    let response = process
        .client
        .post(process.url("/api/sessions"))
        .json(&json!({
            "email": domain::seed::seed_user_email(1),
            "password": domain::seed::seed_user_password(SEED),
        }))
        .send()
        .await
        .expect("log in");
    assert_eq!(response.status(), 200, "log in");
    let session: Value = response.json().await.expect("a session body");
    session["token"].as_str().expect("a token").to_owned()
}

/// The status of `GET /api/cart` with `token`: 200 when the process accepts it.
async fn cart_status(process: &Process, token: &str) -> u16 {
    process
        .client
        .get(process.url("/api/cart"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get the cart")
        .status()
        .as_u16()
}

fn stop(process: &mut Process) {
    kill(process.pid(), Signal::SIGTERM).expect("send SIGTERM");
    assert!(process.wait_exit(Duration::from_secs(15)).success());
}

#[tokio::test]
async fn without_a_token_secret_a_token_issued_before_a_restart_is_accepted_after_it() {
    let seed = SEED.to_string();
    let data = tempfile::tempdir().expect("temp dir");
    let mut first = Process::start_without_token_secret(data, &["--seed", &seed]).await;
    let token = log_in(&first).await;
    assert_eq!(cart_status(&first, &token).await, 200);
    stop(&mut first);

    let second = Process::start_without_token_secret(first.take_data(), &[]).await;
    assert_eq!(
        cart_status(&second, &token).await,
        200,
        "the restarted monolith refused a token the first one issued"
    );
    // And the two agree the other way round: what the second signs, the kept secret signs.
    let again = log_in(&second).await;
    assert_eq!(cart_status(&second, &again).await, 200);
}

#[tokio::test]
async fn a_configured_token_secret_wins_over_the_kept_one() {
    let seed = SEED.to_string();
    let data = tempfile::tempdir().expect("temp dir");
    let mut first = Process::start_without_token_secret(data, &["--seed", &seed]).await;
    let kept_secret_token = log_in(&first).await;
    stop(&mut first);

    // `start_on` configures SHOPLAB_TOKEN_SECRET.
    let configured = Process::start_on(first.take_data(), &[]).await;
    assert_eq!(
        cart_status(&configured, &kept_secret_token).await,
        401,
        "a token signed with the kept secret was accepted under a configured one"
    );
    let token = log_in(&configured).await;
    assert_eq!(cart_status(&configured, &token).await, 200);
}

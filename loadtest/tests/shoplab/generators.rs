//! Several `shoplab load` processes as generators of one run: each takes its share and a
//! slice of the seeded users of its own, none starts before the agreed time, and their
//! shards merge into one run with every request and the histograms added.

use loadtest_lab::generators::{self, read_shard};
use loadtest_results::component::Build;
use loadtest_results::history::RequestRecord;

use crate::support::{SEED, shoplab_binary, start_target};

fn users_of(records: &[RequestRecord]) -> std::collections::BTreeSet<String> {
    records
        .iter()
        .filter_map(|record| record.user.clone())
        .collect()
}

#[tokio::test]
async fn two_generators_split_the_users_start_together_and_merge_into_one_run() {
    let target = start_target(Build::Monolith).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let second_shard = folder.path().join("second.jsonl");
    // Far enough ahead that both processes are past their preflight by then.
    let start_at = generators::unix_ms() + 6_000;
    let seed = SEED.to_string();
    let start_at_arg = start_at.to_string();
    // The share as each platform gives it: Swarm's 1-based task slot, Kubernetes' 0-based
    // completion index of an Indexed Job's pod.
    let generator = |share: (&'static str, &'static str), shard: String| {
        let args = vec![
            "load".to_owned(),
            format!("--base-url={}", target.url()),
            "--users=2".to_owned(),
            "--duration=2".to_owned(),
            "--products=20".to_owned(),
            "--seeded-users=2".to_owned(),
            format!("--seed={seed}"),
            // Buyers only, so every user logs in and its email is in the records.
            "--browse=0".to_owned(),
            "--buy=1".to_owned(),
            format!("--start-at={start_at_arg}"),
            format!("--shard={shard}"),
        ];
        let mut command = tokio::process::Command::new(shoplab_binary());
        command
            .args(args)
            .env(share.0, share.1)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command.output()
    };
    let (first, second) = tokio::join!(
        generator(("SHOPLAB_GENERATOR", "1/2"), "-".to_owned()),
        generator(
            ("SHOPLAB_GENERATOR_INDEX", "1/2"),
            second_shard.display().to_string()
        )
    );
    let (first, second) = (first.expect("runs"), second.expect("runs"));
    let stderr =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    // With the shard on stdout the summary goes to stderr.
    assert!(stderr(&first).contains("requests in"), "{}", stderr(&first));

    let first = read_shard(&String::from_utf8_lossy(&first.stdout)).expect("the first shard");
    let second = read_shard(&std::fs::read_to_string(&second_shard).expect("the second shard"))
        .expect("parses");
    for shard in [&first, &second] {
        assert!(
            shard.header.started_unix_ms >= start_at,
            "generator {} started {} ms before the agreed time",
            shard.header.share,
            start_at - shard.header.started_unix_ms
        );
        assert!(
            !shard.records.is_empty(),
            "{} sent nothing",
            shard.header.share
        );
    }
    assert_eq!(
        (first.header.share.as_str(), second.header.share.as_str()),
        ("1/2", "2/2")
    );
    // A slice of the seeded users each: no two sessions share a cart.
    let (first_users, second_users) = (users_of(&first.records), users_of(&second.records));
    assert_eq!(
        first_users.into_iter().collect::<Vec<_>>(),
        ["user1@shoplab.test"]
    );
    assert_eq!(
        second_users.into_iter().collect::<Vec<_>>(),
        ["user2@shoplab.test"]
    );

    let requests = first.records.len() + second.records.len();
    let corrected = first.corrected.len() + second.corrected.len();
    let merged = generators::merge(vec![first, second], &[], start_at).expect("merges");
    assert_eq!(merged.run.records.len(), requests);
    assert_eq!(merged.run.corrected.len(), corrected);
    assert_eq!(merged.generators.len(), 2);
    assert!(merged.run.records.is_sorted_by_key(|record| record.t_ms));
    // Both ran for their two seconds, on one clock from the agreed start.
    assert!(merged.run.wall_s >= 2.0, "{}", merged.run.wall_s);
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn a_generator_share_or_start_time_that_makes_no_sense_is_refused_before_any_load() {
    let url = "http://127.0.0.1:9";
    let far = (generators::unix_ms() + 3_600_000).to_string();
    for (args, names, code) in [
        (vec!["--generator", "3/2"], "3/2", 2),
        (vec!["--generator", "0/2"], "0/2", 2),
        (vec!["--generator-index", "2/2"], "0 <= I < N", 2),
        (
            vec!["--generator", "1/2", "--generator-index", "0/2"],
            "cannot be used with",
            2,
        ),
        // Refused before the readiness check: nothing answers on this URL.
        (
            vec!["--generator", "3/3", "--users", "2"],
            "fewer than the 3 generators",
            1,
        ),
        (vec!["--start-at", far.as_str()], "at most 600 s ahead", 1),
    ] {
        let output = tokio::process::Command::new(shoplab_binary())
            .args(["load", "--base-url", url])
            .args(&args)
            .output()
            .await
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        assert!(
            !stderr.contains("/ready"),
            "checked the shop first: {stderr}"
        );
        assert!(stderr.contains(names), "{stderr}");
    }
}

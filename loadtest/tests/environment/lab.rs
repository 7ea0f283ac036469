//! One of the lab's experiments run on a `Target` as `compare` runs it, for the tests that
//! drive an experiment end to end (the fault matrix, the scale experiment under quotas).

use std::time::Duration;

/// Runs one of the lab's experiments on `target` as `compare` would, under `users` Goose
/// users for `duration` per load, with the lab's 4:1 browse-to-buy mix on one core each for
/// the shop and the generator; `reset` is what the target's last reset said.
pub async fn run_experiment(
    kind: loadtest_lab::experiments::Kind,
    target: &mut loadtest_platform::Target,
    profile: &loadtest_results::profile::Profile,
    reset: &domain::admin::ResetSummary,
    users: usize,
    duration: Duration,
) -> loadtest_results::experiments::Outcome {
    let template = loadtest_lab::load::LoadPlan {
        base_url: target.url().to_owned(),
        users,
        duration,
        rate: None,
        request_timeout: Duration::from_secs(5),
    };
    let progress = indicatif::ProgressBar::hidden();
    let experiment = loadtest_lab::experiments::Experiment {
        target,
        profile,
        shop: loadtest_lab::journeys::Shopfront {
            products: reset.products,
            users: reset.users,
            first_user: 0,
            password: reset.user_password.clone(),
            browse_weight: 4,
            buy_weight: 1,
        },
        template,
        generator_cores: 1,
        sut_cores: 1,
        generators: 0,
        seed: crate::support::SEED,
        progress: &progress,
        history: Vec::new(),
    };
    let (outcome, _) = loadtest_lab::experiments::run(kind, experiment)
        .await
        .unwrap_or_else(|error| panic!("the {kind:?} experiment runs: {error:#}"));
    outcome
}

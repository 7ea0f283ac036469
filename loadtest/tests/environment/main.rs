//! The `shoplab` tests that need what a machine may lack — Docker images, chromedriver, a
//! PostgreSQL server, a writable cgroup hierarchy — beside the ones that share their
//! fixtures. A test whose need is met runs; one whose need is absent is reported ignored with
//! the reason, never passed without running (`testkit`); CI requires every need
//! (`SHOPLAB_TEST_REQUIRE`), so there nothing is ignored.

#[allow(dead_code)] // The shared fixtures; this binary uses some of them.
#[path = "../shoplab/support.rs"]
mod support;

mod compose; // the compose target on real containers (needs the images; .ci/compose.sh runs it)
mod lab; // one of the lab's experiments run as compare runs it, for the tests that drive one
mod netfaults; // fault proxies (latency, reset, cut, database down), a cgroup CPU limit, the lab's matrix of them
mod postgres; // the lab on a PostgreSQL server: a run's own databases, dropped at stop or by the next run
mod scale; // the scale experiment's per-process CPU quota in real cgroups, and the experiment under it
mod suite; // shoplab suite end to end: two databases × both builds, an interrupted cell run again, finished cells kept, a changed file refused
mod swarm; // the swarm target on a real Docker Swarm of docker-in-docker nodes (.ci/swarm.sh runs it)
mod workshop; // shoplab workshop: its JSON API with reqwest, and the page in headless Chromium

use std::process::ExitCode;

use loadtest_platform::cgroup;
use loadtest_results::resources::ProcessLimits;
use testkit::needs::{chromedriver, compose_images, postgres, swarm_images};
use testkit::{Need, Suite, Unmet, tests};

/// A cgroup CPU controller (v1, or v2's unified hierarchy) this process may create groups in.
fn cgroup_cpu() -> Need<()> {
    let limits = ProcessLimits {
        cpu_cores: Some(0.2),
        ..ProcessLimits::default()
    };
    let found = cgroup::check_available(&limits)
        .map_err(|error| Unmet::Absent(format!("no CPU quota can be set here: {error:#}")));
    Need::new("cgroup-v1", found)
}

/// The images, and leave to make this machine's engine a swarm manager for the test's run
/// (`SHOPLAB_TEST_HOST_SWARM=1`): asked for explicitly, since it changes the engine's own
/// state, which other users of a shared engine see.
fn host_swarm() -> Need<String> {
    if std::env::var("SHOPLAB_TEST_HOST_SWARM").as_deref() != Ok("1") {
        return Need::new(
            "host-swarm",
            Err(Unmet::Absent(
                "opt-in: it makes this machine's Docker engine a one-node swarm for its run \
                 (SHOPLAB_TEST_HOST_SWARM=1, with the swarm images' SHOPLAB_TEST_SWARM_TAG)"
                    .to_owned(),
            )),
        );
    }
    swarm_images()
}

fn main() -> ExitCode {
    let mut suite = Suite::new();
    tests!(suite, netfaults::latency_on_the_link_to_recommendations_delays_every_product_page_by_at_least_that_much);
    tests!(suite, netfaults::a_cut_or_reset_link_gives_the_documented_degraded_answer_within_the_hop_budget_and_heals);
    tests!(
        suite,
        netfaults::a_truncating_link_added_through_the_catalogue_breaks_listing_with_503_and_heals
    );
    tests!(
        suite,
        netfaults::the_fault_matrix_realizes_the_new_kinds_on_micro_and_says_why_when_it_cannot
    );
    tests!(
        suite,
        netfaults::the_fault_matrix_records_network_faults_on_the_monolith_as_not_applicable
    );
    tests!(suite, netfaults::a_cpu_limit_throttles_a_busy_process_and_lifting_it_gives_the_cpu_back, needs cgroup_cpu());
    tests!(suite, scale::every_shop_process_and_a_replica_added_later_are_held_to_the_quota_until_it_is_lifted, needs cgroup_cpu());
    tests!(suite, scale::the_scale_experiment_under_quotas_adds_a_replica_of_the_bottleneck_and_prices_the_gain, needs cgroup_cpu());
    tests!(suite, netfaults::a_database_down_makes_requests_fail_with_503_and_they_recover_after_the_heal, needs postgres());
    tests!(suite, postgres::a_lab_run_on_postgres_uses_databases_of_its_own_and_drops_them_when_it_stops, needs postgres());
    tests!(suite, postgres::a_run_drops_the_databases_a_dead_run_left_and_keeps_a_live_runs, needs postgres());
    tests!(suite, suite::a_suite_of_two_databases_reruns_an_interrupted_cell_keeps_finished_ones_and_refuses_a_changed_file, needs postgres());
    tests!(
        suite,
        workshop::the_workshop_api_drives_load_kills_self_heals_checks_and_refuses_bad_input
    );
    tests!(
        suite,
        workshop::the_topology_picker_refuses_bad_picks_untouched_and_starts_the_chosen_grouping
    );
    tests!(suite, workshop::the_page_shows_a_killed_catalog_turn_red_and_browse_fail_then_both_recover_on_heal, needs chromedriver());
    tests!(suite, compose::on_compose_the_engine_restarts_a_killed_monolith_and_a_rolling_deploy_replaces_its_container, needs compose_images());
    tests!(suite, compose::on_compose_a_cut_network_to_recommendations_empties_the_list_and_reconnecting_brings_it_back, needs compose_images());
    tests!(suite, compose::on_compose_a_topology_runs_a_container_per_group_sells_through_the_gateway_and_heals_the_group_of_payments, needs compose_images());
    tests!(suite, compose::the_workshop_on_compose_shows_the_containers_lets_the_engine_heal_a_kill_and_refuses_what_compose_cannot_do, needs compose_images());
    tests!(suite, swarm::on_a_swarm_a_killed_monolith_is_healed_a_roll_replaces_it_and_a_bad_release_is_rolled_back, needs swarm_images());
    tests!(suite, swarm::on_a_swarm_calls_spread_over_a_scaled_service_a_lost_node_is_rescheduled_and_a_drain_gets_spares_first, needs swarm_images());
    tests!(suite, swarm::the_workshop_on_a_swarm_shows_its_tasks_lets_swarm_heal_a_kill_and_removes_the_swarm, needs swarm_images());
    tests!(suite, swarm::an_existing_swarm_is_used_through_its_manager_and_left_as_it_was, needs host_swarm());
    tests!(suite, swarm::missing_images_are_named_with_their_fix_before_anything_is_made, needs swarm_images());
    suite.run()
}

//! Parsing, errors, presets, round trips and the checkout rule of `Topology`.

use super::*;

fn parse(text: &str) -> Topology {
    Topology::parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

fn error(text: &str) -> TopologyError {
    Topology::parse(text).expect_err(text)
}

#[test]
fn a_spec_parses_into_its_groups_with_contexts_in_name_order() {
    let topology = parse("catalog+users, inventory ,payments+orders+cart,recommendations");
    let groups: Vec<String> = topology.groups().iter().map(Group::spec).collect();
    assert_eq!(
        groups,
        [
            "cart+orders+payments",
            "catalog+users",
            "inventory",
            "recommendations"
        ]
    );
    assert_eq!(topology.preset(), None);
    assert_eq!(
        topology.group_of(Context::Orders).name(),
        "cart+orders+payments"
    );
    assert_eq!(topology.group_of(Context::Users).name(), "catalog+users");
    assert!(topology.needs_gateway());
}

#[test]
fn two_spellings_of_one_grouping_are_equal() {
    assert_eq!(
        parse("users,catalog+recommendations,inventory,cart+orders+payments"),
        parse("payments+orders+cart,inventory,recommendations+catalog,users")
    );
}

#[test]
fn display_parses_back_to_the_same_topology_for_every_preset_and_a_custom_one() {
    let mut topologies: Vec<Topology> = PRESETS.iter().map(Topology::of_preset).collect();
    topologies.push(parse(
        "catalog+users,inventory+recommendations,cart+orders+payments",
    ));
    for topology in topologies {
        let written = topology.to_string();
        assert_eq!(parse(&written), topology, "{written}");
        assert_eq!(parse(&topology.spec()), topology, "{}", topology.spec());
    }
}

#[test]
fn a_spec_that_spells_a_preset_is_that_preset_with_its_names() {
    let topology = parse("catalog+cart+inventory+orders+payments,users,recommendations");
    assert_eq!(topology.preset(), Some("satellites"));
    assert_eq!(topology.to_string(), "satellites");
    assert_eq!(topology.group_of(Context::Cart).name(), "core");
    let coarse = parse("catalog+recommendations,inventory,cart+orders+payments,users");
    assert_eq!(coarse, Topology::of_preset(&COARSE));
    assert_eq!(coarse.group_of(Context::Orders).name(), "checkout");
    let micro = parse("catalog,inventory,cart,orders,payments,users,recommendations");
    assert_eq!(micro, Topology::micro());
    assert_eq!(micro.group_of(Context::Payments).name(), "payments");
}

#[test]
fn every_preset_hosts_every_context_exactly_once() {
    for preset in &PRESETS {
        let spec = Topology::of_preset(preset).spec();
        // Through the parser, which refuses a context missing or twice.
        let parsed = parse(&spec);
        assert_eq!(parsed.preset(), Some(preset.name), "{spec}");
        let hosted: usize = parsed
            .groups()
            .iter()
            .map(|group| group.contexts().len())
            .sum();
        assert_eq!(hosted, Context::ALL.len(), "{}", preset.name);
    }
}

#[test]
fn presets_run_from_one_process_to_seven_with_unique_names() {
    let sizes: Vec<usize> = PRESETS
        .iter()
        .map(|preset| Topology::of_preset(preset).groups().len())
        .collect();
    assert_eq!(sizes, [1, 3, 2, 4, 7]);
    for preset in &PRESETS {
        let topology = Topology::of_preset(preset);
        let mut names: Vec<String> = topology.groups().iter().map(Group::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), topology.groups().len(), "{}", preset.name);
        assert!(!preset.why.is_empty());
    }
    assert!(Topology::monolith().is_single() && !Topology::monolith().needs_gateway());
    assert_eq!(Topology::monolith().groups()[0].name(), "monolith");
    assert!(Topology::micro().needs_gateway());
}

#[test]
fn checkout_is_local_only_where_orders_shares_a_group_with_every_context_it_touches() {
    let rules: Vec<(&str, Checkout)> = PRESETS
        .iter()
        .map(|preset| (preset.name, Topology::of_preset(preset).checkout()))
        .collect();
    assert_eq!(
        rules,
        [
            ("monolith", Checkout::Local),
            ("satellites", Checkout::Local),
            ("browse-buy", Checkout::Saga),
            ("coarse", Checkout::Saga),
            ("micro", Checkout::Saga),
        ]
    );
    // Any one of the five elsewhere makes it the saga.
    for away in CHECKOUT_CONTEXTS
        .into_iter()
        .filter(|c| *c != Context::Orders)
    {
        let rest: Vec<&str> = CHECKOUT_CONTEXTS
            .iter()
            .filter(|context| **context != away)
            .map(|context| context.as_str())
            .collect();
        let spec = format!("{},{away}+users+recommendations", rest.join("+"));
        assert_eq!(parse(&spec).checkout(), Checkout::Saga, "{spec}");
    }
    let local = parse("cart+catalog+inventory+orders+payments+users,recommendations");
    assert_eq!(local.checkout(), Checkout::Local);
}

#[test]
fn an_unknown_name_is_named_with_what_would_have_been_valid() {
    let alone = error("monolit");
    assert_eq!(
        alone,
        TopologyError::UnknownContext {
            name: "monolit".into(),
            could_be_preset: true
        }
    );
    let message = alone.to_string();
    assert!(
        message.contains("\"monolit\"")
            && message.contains("catalog")
            && message.contains("coarse"),
        "{message}"
    );
    let in_spec = error("catalog+shipping,inventory");
    assert_eq!(
        in_spec.to_string(),
        "\"shipping\" is not a context (catalog, inventory, cart, orders, payments, users, recommendations)"
    );
}

#[test]
fn a_context_twice_is_refused_within_a_group_and_across_groups() {
    let twice = TopologyError::Repeated {
        context: Context::Cart,
    };
    assert_eq!(error("cart+cart,catalog"), twice);
    assert_eq!(
        error("catalog+cart,inventory+orders+payments+users+recommendations,cart"),
        twice
    );
    assert_eq!(
        twice.to_string(),
        "cart is named twice: every context runs in exactly one process"
    );
}

#[test]
fn a_missing_context_is_named() {
    let missing = error("catalog+recommendations,inventory,cart+orders,users");
    assert_eq!(
        missing,
        TopologyError::Missing {
            contexts: vec![Context::Payments]
        }
    );
    assert_eq!(
        missing.to_string(),
        "no process hosts payments: every context runs in exactly one process"
    );
    assert_eq!(
        error("catalog").to_string(),
        "no process hosts inventory, cart, orders, payments, users, recommendations: every context runs in exactly one process"
    );
}

#[test]
fn an_empty_group_or_spec_is_refused_with_its_position() {
    assert_eq!(
        error("catalog,,users"),
        TopologyError::EmptyGroup { position: 2 }
    );
    assert_eq!(
        error("catalog+,users"),
        TopologyError::EmptyGroup { position: 1 }
    );
    assert_eq!(
        error("catalog+,users").to_string(),
        "process 1 hosts no context (an empty name between ',' or '+')"
    );
    assert_eq!(error("  "), TopologyError::Empty);
    assert!(error("").to_string().contains("monolith, satellites"));
}

#[test]
fn a_group_alone_need_not_hold_every_context() {
    let group: Group = "recommendations+catalog".parse().unwrap();
    assert_eq!(group.spec(), "catalog+recommendations");
    assert_eq!(group.name(), "catalog+recommendations");
    assert_eq!(group.to_string().parse::<Group>().unwrap(), group);
    assert_eq!(Group::one(Context::Orders).name(), "orders");
    let named = group.clone().named("storefront");
    assert_eq!(named.name(), "storefront");
    assert_eq!(named.spec(), "catalog+recommendations");
    assert_eq!(Group::one(Context::Orders).checkout(), Checkout::Saga);
    assert_eq!(
        Group::parse("catalog+catalog"),
        Err(TopologyError::Repeated {
            context: Context::Catalog
        })
    );
    assert!(Group::parse("").is_err());
}

#[test]
fn a_list_reads_presets_and_specs_with_their_own_commas_and_refuses_a_grouping_named_twice() {
    let list = super::parse_list(
        "monolith,catalog+recommendations,inventory,cart+orders+payments,users,micro",
    )
    .expect("a list");
    let names: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["monolith", "coarse", "micro"]);
    let error = super::parse_list("monolith,catalog+users").expect_err("an unfinished spec");
    assert!(error.contains("no process hosts"), "{error}");
    let error = super::parse_list("micro,micro").expect_err("named twice");
    assert!(error.contains("named twice"), "{error}");
}

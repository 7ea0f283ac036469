//! The catalogue's own rules: names spelled once, defaults inside their ranges, the typed
//! faults agreeing with the specs, and every refusal naming what was wrong.

use serde_json::{Value, json};

use super::*;

fn refusal(kind: &str, params: Value) -> String {
    match validate(kind, &params) {
        Err(DomainError::Invalid(message)) => message,
        other => panic!("{kind} {params} was not refused as invalid: {other:?}"),
    }
}

#[test]
fn every_kind_is_spelled_once_in_snake_case() {
    let mut names: Vec<&str> = catalogue().iter().map(|spec| spec.name).collect();
    for name in &names {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name} is not snake_case"
        );
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), catalogue().len(), "a kind is listed twice");
}

#[test]
fn every_default_lies_inside_its_range() {
    for spec in catalogue() {
        for param in spec.params {
            let inside = match param.range {
                Range::Whole { default, min, max } => min <= default && default <= max,
                Range::Number { default, min, max } => min <= default && default <= max,
            };
            assert!(inside, "{}.{}: {:?}", spec.name, param.name, param.range);
        }
    }
}

#[test]
fn every_spec_builds_its_own_fault_with_the_parameters_it_declares() {
    for spec in catalogue() {
        let fault = spec.default_fault();
        assert_eq!(fault.name(), spec.name);
        assert_eq!(fault.spec().name, spec.name);
        let Value::Object(params) = fault.params() else {
            panic!("{} params are not an object", spec.name);
        };
        let mut built: Vec<&str> = params.keys().map(String::as_str).collect();
        let mut declared: Vec<&str> = spec.params.iter().map(|param| param.name).collect();
        built.sort_unstable();
        declared.sort_unstable();
        assert_eq!(built, declared, "{}", spec.name);
        for param in spec.params {
            assert_eq!(
                params[param.name],
                param.range.default(),
                "{}.{}",
                spec.name,
                param.name
            );
        }
        // What a fault serializes to is what the admin API accepts back.
        assert_eq!(validate(spec.name, &fault.params()), Ok(fault));
    }
}

#[test]
fn the_lab_knows_every_layer_and_its_kinds() {
    let layer_of = |name: &str| spec(name).map(|spec| spec.layer);
    assert_eq!(layer_of("kill"), Some(Layer::Process));
    assert_eq!(layer_of("pause"), Some(Layer::Process));
    for in_process in ["latency", "errors", "hang", "abort", "cpu_hog", "leak"] {
        assert_eq!(layer_of(in_process), Some(Layer::InProcess), "{in_process}");
    }
    for network in [
        "net_latency",
        "net_reset",
        "net_cut",
        "net_bandwidth",
        "net_truncate",
    ] {
        assert_eq!(layer_of(network), Some(Layer::Network), "{network}");
    }
    assert_eq!(layer_of("cpu_limit"), Some(Layer::Resource));
    assert_eq!(layer_of("db_down"), Some(Layer::Dependency));
    assert_eq!(catalogue().len(), 15);
}

#[test]
fn parameters_left_out_are_filled_with_the_one_default() {
    assert_eq!(
        validate("latency", &Value::Null),
        Ok(Fault::Latency { ms: 300 })
    );
    assert_eq!(
        validate("errors", &json!({})),
        Ok(Fault::Errors { rate: 0.5 })
    );
    assert_eq!(
        validate("cpu_hog", &json!({})),
        Ok(Fault::CpuHog { threads: 2 })
    );
    assert_eq!(
        validate("leak", &json!({"max_mb": 64})),
        Ok(Fault::Leak {
            mb_per_sec: 64,
            max_mb: 64
        })
    );
    assert_eq!(
        validate("net_latency", &json!({})),
        Ok(Fault::NetLatency { ms: 300 })
    );
    assert_eq!(
        validate("cpu_limit", &json!({})),
        Ok(Fault::CpuLimit { cores: 0.2 })
    );
}

#[test]
fn given_parameters_inside_their_range_are_kept_at_both_ends() {
    assert_eq!(
        validate("latency", &json!({"ms": 1})),
        Ok(Fault::Latency { ms: 1 })
    );
    assert_eq!(
        validate("latency", &json!({"ms": 60_000})),
        Ok(Fault::Latency { ms: 60_000 })
    );
    // A whole number where a number is asked for is that number.
    assert_eq!(
        validate("errors", &json!({"rate": 1})),
        Ok(Fault::Errors { rate: 1.0 })
    );
    assert_eq!(
        validate("cpu_limit", &json!({"cores": 0.01})),
        Ok(Fault::CpuLimit { cores: 0.01 })
    );
}

#[test]
fn an_unknown_kind_is_invalid_and_the_known_kinds_are_listed() {
    let message = refusal("meteor", json!({}));
    assert!(message.contains("\"meteor\""), "{message}");
    assert!(
        message.contains("net_latency") && message.contains("db_down"),
        "{message}"
    );
}

#[test]
fn an_unknown_parameter_is_invalid_and_named() {
    let message = refusal("latency", json!({"ms": 300, "jitter": 5}));
    assert!(
        message.contains("\"jitter\"") && message.contains("ms"),
        "{message}"
    );
    let message = refusal("net_cut", json!({"ms": 300}));
    assert_eq!(message, "net_cut takes no parameters, got \"ms\"");
}

#[test]
fn an_out_of_range_parameter_is_invalid_naming_the_parameter_and_its_range() {
    assert_eq!(
        refusal("latency", json!({"ms": 0})),
        "latency params.ms must be a whole number between 1 and 60000 (ms), got 0"
    );
    assert_eq!(
        refusal("errors", json!({"rate": 1.5})),
        "errors params.rate must be a number between 0.01 and 1 (fraction), got 1.5"
    );
    assert_eq!(
        refusal("cpu_hog", json!({"threads": 99})),
        "cpu_hog params.threads must be a whole number between 1 and 16 (threads), got 99"
    );
    let message = refusal("leak", json!({"max_mb": 5000}));
    assert!(
        message.contains("params.max_mb") && message.contains("between 1 and 4096"),
        "{message}"
    );
}

#[test]
fn a_parameter_of_the_wrong_type_is_invalid_naming_the_parameter_and_its_range() {
    for (kind, params) in [
        ("latency", json!({"ms": -5})),
        ("latency", json!({"ms": 2.5})),
        ("latency", json!({"ms": "300"})),
        ("errors", json!({"rate": "all"})),
        ("errors", json!({"rate": null})),
    ] {
        let message = refusal(kind, params.clone());
        let name = params.as_object().unwrap().keys().next().unwrap().clone();
        assert!(
            message.contains(&format!("params.{name}")) && message.contains("between"),
            "{kind} {params}: {message}"
        );
    }
    assert_eq!(
        refusal("latency", json!([1])),
        "latency params must be an object"
    );
}

#[test]
fn the_catalogue_serializes_with_units_types_defaults_and_ranges() {
    let served = serde_json::to_value(catalogue()).unwrap();
    let errors = served
        .as_array()
        .unwrap()
        .iter()
        .find(|spec| spec["name"] == "errors")
        .unwrap();
    assert_eq!(errors["layer"], "in_process");
    assert_eq!(
        errors["params"][0],
        json!({
            "name": "rate",
            "unit": "fraction",
            "type": "number",
            "default": 0.5,
            "min": 0.01,
            "max": 1.0,
            "about": "the share of calls that fail",
        })
    );
    assert!(errors.get("build").is_none());
}

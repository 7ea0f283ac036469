//! The report, rendered from the committed results of a real quick run
//! (`loadtest/results/fixtures/results-quick.json`): every chart as a well-formed SVG and a PNG of the
//! expected size, pages with every section that fetch nothing and link only to files that
//! exist, `shoplab report` and `shoplab diff` as commands, and clear errors on bad input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::shoplab_binary;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/results/fixtures/results-quick.json"
);

/// Every section of `report.html`, by anchor.
const SECTIONS: [&str; 12] = [
    "summary",
    "warnings",
    "throughput",
    "latency",
    "resources",
    "hop-tax",
    "faults",
    "deploys",
    "scale",
    "invariants",
    "environment",
    "files",
];

/// The monolith's blue and the microservices' orange (`report::theme`).
const MONOLITH_BLUE: [u8; 3] = [31, 119, 180];
const MICRO_ORANGE: [u8; 3] = [235, 115, 10];

fn fixture() -> Value {
    let text = std::fs::read_to_string(FIXTURE).expect("the fixture is committed");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// A run folder holding only the fixture as `results.json`, with the report written into it.
fn rendered() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(FIXTURE, dir.path().join("results.json")).expect("copy the fixture");
    let results = loadtest_report::load(dir.path()).expect("the fixture loads");
    loadtest_report::write(dir.path(), &results).expect("the report is written");
    dir
}

/// The charts the fixture must give, read from the fixture itself rather than from the
/// renderer: one per fixed chart, one per fault cell in force on either build.
fn expected_charts(results: &Value) -> BTreeSet<String> {
    let mut stems: BTreeSet<String> = [
        "throughput",
        "latency",
        "resources",
        "blast-radius",
        "deploy-timeline",
        "deploy-times",
        "scale",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    if !results["calibration"].is_null() {
        stems.insert("hop-tax".into());
    }
    for outcome in results["experiments"].as_array().expect("experiments") {
        for cell in outcome["findings"]["cells"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if cell["applied"] == Value::Bool(true) {
                let cell: loadtest_results::experiments::faults::Cell =
                    serde_json::from_value(cell.clone()).expect("a fault cell");
                stems.insert(cell.fault.stem());
            }
        }
    }
    stems
}

/// The decoded RGB pixels of a PNG, with its size.
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|_| panic!("{} exists", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|error| panic!("{} is a PNG: {error}", path.display()));
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader
        .next_frame(&mut pixels)
        .unwrap_or_else(|error| panic!("{} decodes: {error}", path.display()));
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

fn has_pixel(pixels: &[u8], color: [u8; 3]) -> bool {
    pixels.chunks_exact(3).any(|pixel| pixel == color)
}

#[test]
fn every_chart_is_written_as_an_svg_that_parses_and_a_png_of_slide_size() {
    let dir = rendered();
    let charts = dir.path().join("charts");
    let expected = expected_charts(&fixture());
    let written: BTreeSet<String> = std::fs::read_dir(&charts)
        .expect("charts/ exists")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for stem in &expected {
        for extension in ["svg", "png"] {
            assert!(
                written.contains(&format!("{stem}.{extension}")),
                "charts/{stem}.{extension} is missing; written: {written:?}"
            );
        }
        let svg = std::fs::read_to_string(charts.join(format!("{stem}.svg"))).expect("svg");
        let document = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|error| panic!("{stem}.svg is not XML: {error}"));
        assert_eq!(document.root_element().tag_name().name(), "svg");
        assert!(svg.contains("<text"), "{stem}.svg has no text");

        let (width, height, pixels) = decode_png(&charts.join(format!("{stem}.png")));
        assert!(
            width >= 1200 && height >= 700,
            "{stem}.png is {width}x{height}"
        );
        // The title is drawn with the embedded font: dark pixels in its band.
        let title_band = &pixels[..(width * 60 * 3) as usize];
        let dark = title_band
            .chunks_exact(3)
            .filter(|pixel| pixel.iter().all(|channel| *channel < 90))
            .count();
        assert!(
            dark > 200,
            "{stem}.png has no title text ({dark} dark pixels)"
        );
    }
}

#[test]
fn both_builds_keep_their_colors_in_the_charts_that_show_both() {
    let dir = rendered();
    for stem in ["throughput", "resources", "deploy-times"] {
        let (_, _, pixels) = decode_png(&dir.path().join("charts").join(format!("{stem}.png")));
        assert!(
            has_pixel(&pixels, MONOLITH_BLUE),
            "{stem}.png has no monolith blue"
        );
        assert!(
            has_pixel(&pixels, MICRO_ORANGE),
            "{stem}.png has no microservices orange"
        );
    }
}

#[test]
fn the_html_page_has_every_section_inlines_its_charts_and_fetches_nothing() {
    let dir = rendered();
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    for section in SECTIONS {
        assert!(
            html.contains(&format!("id=\"{section}\"")),
            "no section {section}"
        );
    }
    for forbidden in ["http://", "https://", "<script", "<link", "src=", "url("] {
        assert!(
            !html.contains(forbidden),
            "report.html contains {forbidden:?}"
        );
    }
    let charts = expected_charts(&fixture());
    assert_eq!(html.matches("<svg").count(), charts.len());
    for verdict in [
        "independent deploy",
        "fault isolation",
        "independent scaling",
        "no-downtime rolling update",
        "self-healing",
        "the cost of each hop",
    ] {
        assert!(
            html.contains(&format!("<td>{verdict}</td>")),
            "no verdict on {verdict}"
        );
    }
}

#[test]
fn every_markdown_link_resolves_to_a_file_in_the_run_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(FIXTURE, dir.path().join("results.json")).expect("copy the fixture");
    std::fs::write(dir.path().join("throughput.csv"), "build,users\n").expect("a csv");
    let results = loadtest_report::load(dir.path()).expect("the fixture loads");
    loadtest_report::write(dir.path(), &results).expect("the report is written");
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");

    let targets: Vec<&str> = markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target))
        .filter(|target| !target.starts_with('#'))
        .collect();
    assert!(targets.len() >= expected_charts(&fixture()).len() + 2);
    for target in targets {
        assert!(
            !target.contains("://") && dir.path().join(target).is_file(),
            "report.md links to {target}, which is not a file of the run"
        );
    }
    assert!(markdown.contains("[throughput.csv](throughput.csv)"));
    assert!(markdown.contains("history.jsonl (not in this folder)"));
}

#[test]
fn the_same_results_give_the_same_pages() {
    let (first, second) = (rendered(), rendered());
    for page in ["report.md", "report.html"] {
        let read = |dir: &tempfile::TempDir| {
            std::fs::read_to_string(dir.path().join(page)).expect("the page")
        };
        assert!(
            read(&first) == read(&second),
            "{page} differs between two renders"
        );
    }
}

#[test]
fn shoplab_report_and_shoplab_diff_run_as_commands() {
    let run_a = tempfile::tempdir().expect("temp dir");
    std::fs::copy(FIXTURE, run_a.path().join("results.json")).expect("copy the fixture");
    // Run B: the same run with every throughput level 30 % faster.
    let mut faster = fixture();
    faster["run_id"] = Value::from("run-b");
    for outcome in faster["experiments"].as_array_mut().expect("experiments") {
        for level in outcome["findings"]["levels"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            let rate = level["requests_per_s"].as_f64().expect("a rate");
            level["requests_per_s"] = Value::from(rate * 1.3);
        }
    }
    let run_b = tempfile::tempdir().expect("temp dir");
    let run_b_file = run_b.path().join("results.json");
    std::fs::write(&run_b_file, faster.to_string()).expect("write run B");

    let report = Command::new(shoplab_binary())
        .arg("report")
        .arg(run_a.path())
        .output()
        .expect("shoplab report runs");
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    for file in ["report.html", "report.md", "charts/throughput.png"] {
        assert!(
            run_a.path().join(file).is_file(),
            "shoplab report wrote no {file}"
        );
    }

    let out = tempfile::tempdir().expect("temp dir");
    let diff = Command::new(shoplab_binary())
        .arg("diff")
        .arg(run_a.path())
        .arg(&run_b_file)
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("shoplab diff runs");
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    for file in [
        "diff.html",
        "diff.md",
        "charts/throughput-diff.svg",
        "charts/throughput-diff.png",
    ] {
        assert!(
            out.path().join(file).is_file(),
            "shoplab diff wrote no {file}"
        );
    }
    let markdown = std::fs::read_to_string(out.path().join("diff.md")).expect("diff.md");
    let throughput_rows: Vec<&str> = markdown
        .lines()
        .filter(|line| line.starts_with("| successful throughput at "))
        .collect();
    assert_eq!(throughput_rows.len(), 2, "{markdown}");
    // The fixture has one run a side: a change, but no verdict the spread could support.
    for row in throughput_rows {
        assert!(row.contains("(+30.0 %); one run each: no verdict"), "{row}");
    }
}

#[test]
fn a_run_whose_target_read_no_cpu_or_memory_says_not_measured_and_draws_no_cost_chart() {
    // What the Kubernetes target writes: no CPU or memory figure, `null` rather than zero.
    let mut unmetered = fixture();
    unmetered["settings"]["target"] = Value::from("kubernetes");
    for outcome in unmetered["experiments"]
        .as_array_mut()
        .expect("experiments")
    {
        let findings = &mut outcome["findings"];
        for level in findings["levels"].as_array_mut().into_iter().flatten() {
            for field in ["sut_cpu_s", "sut_peak_rss_mib", "requests_per_sut_cpu_s"] {
                level[field] = Value::Null;
            }
        }
        for half in ["before", "after"] {
            if findings[half].is_object() {
                findings[half]["sut_cpu_s"] = Value::Null;
                findings[half]["requests_per_sut_cpu_s"] = Value::Null;
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("results.json"), unmetered.to_string()).expect("write");
    let results = loadtest_report::load(dir.path()).expect("null cost figures load");
    loadtest_report::write(dir.path(), &results).expect("the report is written");

    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    let cost = markdown
        .split("## Cost: CPU and memory")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a cost section");
    assert!(
        cost.contains("Not measured: the kubernetes target"),
        "{cost}"
    );
    assert!(!cost.contains("CPU s"), "a cost figure was printed: {cost}");
    assert!(!dir.path().join("charts/resources.png").exists());
    let cpu_rows: Vec<&str> = markdown
        .lines()
        .filter(|line| line.starts_with("| CPU per 1 000 successful requests at "))
        .collect();
    assert!(!cpu_rows.is_empty(), "{markdown}");
    for row in cpu_rows {
        assert!(
            row.contains("not measured") && !row.contains("0.0"),
            "{row}"
        );
    }
    let scale = markdown.split("## Scale").nth(1).expect("a scale section");
    assert!(scale.contains("| not measured |"), "{scale}");
}

/// Runs `shoplab report` on `path` and returns its stderr, after checking it failed cleanly.
fn report_fails(path: &Path) -> String {
    let output = Command::new(shoplab_binary())
        .arg("report")
        .arg(path)
        .output()
        .expect("shoplab report runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "shoplab report accepted {}",
        path.display()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_input_gives_a_clear_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing: PathBuf = dir.path().join("nowhere").join("results.json");
    assert!(report_fails(&missing).contains("read "));

    let not_json = dir.path().join("not-json.json");
    std::fs::write(&not_json, "ok: yes\n").expect("write");
    assert!(report_fails(&not_json).contains("is not JSON"));

    let version = loadtest_results::SCHEMA_VERSION;
    let mut old = fixture();
    old["schema_version"] = Value::from(version - 1);
    let old_file = dir.path().join("old.json");
    std::fs::write(&old_file, old.to_string()).expect("write");
    let stderr = report_fails(&old_file);
    let expected = format!(
        "has results schema version {}, and this shoplab reads version {version}",
        version - 1
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let wrong_shape = dir.path().join("wrong-shape.json");
    let text = format!(r#"{{"schema_version": {version}, "run_id": 7}}"#);
    std::fs::write(&wrong_shape, text).expect("write");
    let expected = format!("does not match results schema version {version}");
    assert!(report_fails(&wrong_shape).contains(&expected));

    let unversioned = dir.path().join("unversioned.json");
    std::fs::write(&unversioned, "[1, 2, 3]").expect("write");
    assert!(report_fails(&unversioned).contains("has no schema_version"));
}

//! `auditlog bench` (feature `bench`) in a tiny run: its `--json` output has one
//! result per system and scenario, every system of the harness appears in every
//! scenario, and each row carries the documented fields with sane values. Speed is
//! never asserted: the figures depend on the machine.

use std::collections::BTreeSet;
use std::process::Command;

const SYSTEMS: [&str; 5] = [
    "auditlog",
    "atd-runtime",
    "tracing-appender",
    "crossbeam",
    "sqlite",
];
const FIELDS: [&str; 8] = [
    "system",
    "scenario",
    "p50_ns",
    "p99_ns",
    "p999_ns",
    "max_ns",
    "throughput_eps",
    "drops",
];

#[test]
fn a_tiny_run_reports_every_system_in_every_scenario_as_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(["bench", "--json", "--seconds", "0.01", "--bursts", "1"])
        .output()
        .expect("run auditlog bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "auditlog bench failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let results = report["results"].as_array().expect("a results array");

    let scenarios: BTreeSet<&str> = results
        .iter()
        .map(|r| r["scenario"].as_str().expect("scenario is a string"))
        .collect();
    assert_eq!(scenarios.len(), 6, "{scenarios:?}");
    assert_eq!(results.len(), SYSTEMS.len() * scenarios.len());
    for scenario in &scenarios {
        let systems: BTreeSet<&str> = results
            .iter()
            .filter(|r| r["scenario"] == *scenario)
            .map(|r| r["system"].as_str().unwrap())
            .collect();
        assert_eq!(systems, BTreeSet::from(SYSTEMS), "in {scenario}");
    }
    for result in results {
        let row = result.as_object().expect("each result is an object");
        let keys: BTreeSet<&str> = row.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(FIELDS), "{result}");
        let ns = |field: &str| result[field].as_u64().expect("a whole number");
        assert!(ns("p50_ns") >= 1, "{result}");
        assert!(ns("p50_ns") <= ns("p99_ns"), "{result}");
        assert!(ns("p99_ns") <= ns("p999_ns"), "{result}");
        assert!(ns("p999_ns") <= ns("max_ns"), "{result}");
        assert!(ns("throughput_eps") > 0, "{result}");
        let _ = ns("drops");
    }
}

#[test]
fn an_unknown_system_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .args(["bench", "--seconds", "0.01", "--systems", "postgres"])
        .output()
        .expect("run auditlog bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown system `postgres`"), "{stderr}");
}

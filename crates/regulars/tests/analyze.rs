//! `regulars analyze` as a user runs it: the real binary on the CDNOW 1/10 sample (weeks, calibration
//! ending 1997-09-30), checked against the JSON contract of issue 3 and the published BG/NBD figures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cdnow/CDNOW_sample.txt")
}

fn analyze(extra: &[&str]) -> Output {
    let sample = sample();
    let mut args = vec![
        "analyze",
        sample.to_str().unwrap(),
        "--format",
        "cdnow",
        "--unit",
        "week",
        "--calibration-end",
        "1997-09-30",
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_regulars")).args(&args).output().expect("run regulars")
}

fn close(actual: &Value, expected: f64, tolerance: f64, what: &str) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {actual}"));
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual} is not {expected} within {tolerance}");
}

#[test]
fn cdnow_sample_json_matches_the_contract_and_the_published_fit() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    let html = dir.path().join("report.html");
    let out = analyze(&["--json", "-", "--customers", csv.to_str().unwrap(), "--report", html.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "regulars analyze failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("standard output is the JSON report alone");

    assert_eq!(report["customers"], 2357);
    assert!(report["transactions"].as_u64().unwrap() > 2357);
    let bg = &report["models"]["bg_nbd"];
    close(&bg["params"]["r"], 0.243, 0.0005, "r");
    close(&bg["params"]["alpha"], 4.414, 0.0005, "alpha");
    close(&bg["params"]["a"], 0.793, 0.0005, "a");
    close(&bg["params"]["b"], 2.426, 0.0005, "b");
    close(&bg["log_likelihood"], -9582.4, 0.1, "BG/NBD log-likelihood");
    for key in ["r", "alpha", "s", "beta"] {
        assert!(report["models"]["pareto_nbd"]["params"][key].is_f64(), "pareto_nbd.params.{key}");
    }
    for key in ["r", "alpha", "a", "b"] {
        assert!(report["models"]["mbg_nbd"]["params"][key].is_f64(), "mbg_nbd.params.{key}");
    }
    for key in ["p", "q", "v"] {
        assert!(report["models"]["gamma_gamma"]["params"][key].is_f64(), "gamma_gamma.params.{key}");
    }
    let rate = report["metrics"]["repeat_purchase_rate"].as_f64().expect("metrics.repeat_purchase_rate");
    assert!(rate > 0.0 && rate < 1.0);
    let cohorts = report["cohorts"].as_array().expect("cohorts");
    assert!(!cohorts.is_empty());
    for row in cohorts {
        assert!(row["cohort"].is_string() && row["size"].is_u64());
        assert_eq!(row["retention"][0], 1.0, "period 0 of {}", row["cohort"]);
        assert_eq!(row["retention_or_later"][0], 1.0);
    }
    assert!(cohorts[0]["retention"].as_array().unwrap().len() > 1);
    for row in cohorts {
        for cell in row["retention"].as_array().unwrap().iter().chain(row["retention_or_later"].as_array().unwrap()) {
            assert!(cell.is_null() || (0.0..=1.0).contains(&cell.as_f64().unwrap()), "{cell}");
        }
    }
    let segments = report["rfm"]["segments"].as_object().expect("rfm.segments");
    assert_eq!(segments.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 2357);

    // How likely 0, 1, 2+ purchases are in the horizon: for the whole base, and per customer in the CSV.
    let counts = &report["purchase_counts"];
    assert_eq!(counts["model"], "bg_nbd");
    let new_customer: Vec<f64> =
        counts["new_customer"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
    assert_eq!(new_customer.len(), 6);
    assert!((new_customer.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{new_customer:?}");
    let expected: f64 =
        ["customers_none", "customers_one", "customers_two_or_more"].iter().map(|k| counts[k].as_f64().unwrap()).sum();
    assert!((expected - 2357.0).abs() < 1e-6, "{expected}");
    assert!(report["at_risk"][0]["probability_no_purchase"].is_f64());

    let lines = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(lines.lines().count(), 2358, "header and one line per customer");
    assert!(lines.starts_with("customer,frequency,recency,age,"));
    let header: Vec<&str> = lines.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (p0, p1, p2) = (column("p_no_purchase"), column("p_one_purchase"), column("p_two_or_more_purchases"));
    for line in lines.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let sum: f64 = [p0, p1, p2].iter().map(|&i| cells[i].parse::<f64>().unwrap()).sum();
        assert!((sum - 1.0).abs() < 2e-6, "{line}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "the report draws its charts as inline SVG");

    // With the JSON on standard output, the readable summary is on standard error.
    assert!(stderr.contains("BG/NBD") && stderr.contains("2357 customers"), "{stderr}");
}

#[test]
fn summary_on_the_terminal_names_models_segments_and_at_risk_customers() {
    let out = analyze(&["--models", "bg_nbd,gamma_gamma"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["2357 customers", "repeat purchase rate", "BG/NBD", "Gamma-Gamma", "RFM segments", "at risk"] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(!text.contains("Pareto/NBD"), "only the chosen models are fitted");
}

#[test]
fn bad_option_values_fail_with_a_clear_message() {
    let cases: [(&[&str], &str); 4] = [
        (&["--cohort-period", "fortnight"], "fortnight"),
        (&["--models", "bg_nbd,prophet"], "unknown model"),
        (&["--discount-rate", "1.5"], "discount-rate"),
        (&["--as-of", "1997-06-31"], "as-of"),
    ];
    for (extra, needle) in cases {
        let out = analyze(extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
    // A calibration end after the analysis date.
    let out = analyze(&["--as-of", "1997-06-30"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--calibration-end"));
}

#[test]
fn rejected_rows_are_counted_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.csv");
    std::fs::write(
        &file,
        "order_id,customer_id,placed_at,currency,sku,quantity,unit_price\n\
         o1,c1,2026-01-05,EUR,LATTE,2,3.50\n\
         o2,c2,2026-01-06,EUR,LATTE,-1,3.50\n\
         o3,c1,2026-02-10,EUR,LATTE,1,3.50\n\
         o4,c2,2026-02-11,EUR,BUN,1,2.80\n\
         o5,c3,2026-03-01,EUR,BUN,1,2.80\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_regulars"))
        .args(["analyze", file.to_str().unwrap(), "--json", "-", "--models", "bg_nbd"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 orders or rows rejected") && stderr.contains("line 3"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["customers"], 3);
    assert_eq!(report["transactions"], 4);
}

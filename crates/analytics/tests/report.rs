//! `analyze` end to end: the JSON contract of issue 3, the CSV, and the traps.

mod common;

use common::{date, load_cdnow};
use regulars_analytics::report::AnalyzeOptions;
use regulars_analytics::{LogOptions, TimeUnit, TransactionLogBuilder, analyze, write_customers_csv};
use serde_json::Value;

#[test]
fn cdnow_report_follows_the_json_contract() {
    let log = load_cdnow("CDNOW_sample.txt", LogOptions::default());
    let options = AnalyzeOptions {
        time_unit: Some(TimeUnit::Week),
        calibration_end: Some(date(1997, 9, 30)),
        ..Default::default()
    };
    let report = analyze(&log, &options, date(1998, 6, 30)).unwrap();
    let json: Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["customers"], 2357);
    assert_eq!(json["transactions"], 6696);
    let bg = &json["models"]["bg_nbd"];
    assert!((bg["params"]["r"].as_f64().unwrap() - 0.243).abs() < 5e-4);
    for key in ["alpha", "a", "b"] {
        assert!(bg["params"][key].is_f64(), "{key}");
    }
    assert!((bg["log_likelihood"].as_f64().unwrap() - -9582.4).abs() < 0.1);
    for key in ["r", "alpha", "s", "beta"] {
        assert!(json["models"]["pareto_nbd"]["params"][key].is_f64(), "{key}");
    }
    for key in ["r", "alpha", "a", "b"] {
        assert!(json["models"]["mbg_nbd"]["params"][key].is_f64(), "{key}");
    }
    let gg = &json["models"]["gamma_gamma"]["params"];
    assert!((gg["p"].as_f64().unwrap() - 6.25).abs() < 5e-3);
    assert!((gg["v"].as_f64().unwrap() / 100.0 - 15.44).abs() < 5e-3, "v is in minor units");
    let repeat = json["metrics"]["repeat_purchase_rate"].as_f64().unwrap();
    assert!(repeat > 0.0 && repeat < 1.0);
    let cohorts = json["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 3, "first purchases in January to March 1997");
    assert_eq!(cohorts[0]["cohort"], "1997-01");
    assert_eq!(cohorts[0]["retention"][0], 1.0);
    assert_eq!(cohorts[0]["retention_or_later"][0], 1.0);
    let last = cohorts[2]["retention"].as_array().unwrap();
    assert!(last.last().unwrap().is_null(), "March cohort's 18th month is not observable by June 1998");
    let segments = json["rfm"]["segments"].as_object().unwrap();
    assert_eq!(segments.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 2357);
    assert!(json["holdout"]["by_frequency"].as_array().unwrap().len() == 8);
    assert!(json["churn"]["auc"].as_f64().unwrap() > 0.6);
    assert!(report.at_risk.len() == 25);
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains("NaN"));

    let mut csv = Vec::new();
    write_customers_csv(&report, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 2358);
    assert!(csv.lines().next().unwrap().starts_with("customer,frequency,recency,age"));

    let html = regulars_analytics::html::render_html(&report);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for section in [
        "Cohort retention",
        "Retention curves",
        "Repeat purchases",
        "Tracking",
        "Customer lifetime value",
        "RFM",
        "At risk",
    ] {
        assert!(html.contains(section), "{section}");
    }
    assert!(html.matches("<svg").count() >= 6);
}

#[test]
fn nobody_repeating_gives_diagnostics_not_nan() {
    let mut builder = TransactionLogBuilder::new(LogOptions::default());
    for customer in 0..50u64 {
        builder.push(customer, date(2024, 1, 1 + (customer % 28) as u32), 0).unwrap(); // zero-value too
    }
    let log = builder.build();
    let report = analyze(&log, &AnalyzeOptions::default(), date(2024, 3, 31)).unwrap();
    assert!(report.models.bg_nbd.is_none());
    assert!(report.models.errors.contains_key("bg_nbd"));
    assert!(report.models.errors.contains_key("gamma_gamma"));
    assert!(report.clv.is_none());
    assert!(!report.diagnostics.is_empty());
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains("NaN"));
    let html = regulars_analytics::html::render_html(&report);
    assert!(html.contains("bg_nbd"));
}

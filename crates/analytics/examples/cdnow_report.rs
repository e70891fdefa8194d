//! Writes the report of the CDNOW 1/10 sample (weeks, calibration ending 1997-09-30, as of
//! 1998-06-30) as JSON, CSV and HTML into a directory.
//!
//! Run: `cargo run -p regulars-analytics --example cdnow_report -- OUT_DIR`

use std::path::PathBuf;

use chrono::NaiveDate;
use regulars_analytics::html::render_html;
use regulars_analytics::report::AnalyzeOptions;
use regulars_analytics::{
    LogOptions, TimeUnit, TransactionLogBuilder, analyze, write_customers_csv,
};

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: cdnow_report OUT_DIR"),
    );
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cdnow/CDNOW_sample.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut builder = TransactionLogBuilder::new(LogOptions::default());
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 5 {
            continue;
        }
        let date = NaiveDate::parse_from_str(f[2], "%Y%m%d").expect("date");
        let cents = (f[4].parse::<f64>().expect("amount") * 100.0).round() as i64;
        builder
            .push(f[1].parse::<u64>().expect("id"), date, cents)
            .expect("record");
    }
    let log = builder.build();
    let options = AnalyzeOptions {
        time_unit: Some(TimeUnit::Week),
        calibration_end: NaiveDate::from_ymd_opt(1997, 9, 30),
        ..Default::default()
    };
    let report = analyze(
        &log,
        &options,
        NaiveDate::from_ymd_opt(1998, 6, 30).unwrap(),
    )
    .expect("analyze");
    std::fs::create_dir_all(&out).expect("output directory");
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    std::fs::write(out.join("report.html"), render_html(&report)).unwrap();
    let csv = std::fs::File::create(out.join("customers.csv")).unwrap();
    write_customers_csv(&report, std::io::BufWriter::new(csv)).unwrap();
    println!("wrote {}", out.display());
}

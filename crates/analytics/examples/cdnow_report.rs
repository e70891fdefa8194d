//! Writes the report of a CDNOW file (weeks, calibration ending 1997-09-30, as of 1998-06-30) as
//! JSON, CSV and HTML into a directory, and prints how long loading and `analyze` took.
//!
//! Run: `cargo run --release -p regulars-analytics --example cdnow_report -- OUT_DIR [sample|master]`

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use regulars_analytics::html::render_html;
use regulars_analytics::report::AnalyzeOptions;
use regulars_analytics::{LogOptions, TimeUnit, TransactionLogBuilder, analyze, write_customers_csv};

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: cdnow_report OUT_DIR [sample|master]"));
    let file = match std::env::args().nth(2).as_deref() {
        Some("master") => "CDNOW_master.txt",
        _ => "CDNOW_sample.txt",
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cdnow").join(file);
    let started = Instant::now();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut builder = TransactionLogBuilder::new(LogOptions::default());
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Sample: master id, sample id, date, CDs, dollars. Master: id, date, CDs, dollars.
        let (id, date, dollars) = match f.len() {
            5 => (f[1], f[2], f[4]),
            4 if f[0].parse::<u64>().is_ok() => (f[0], f[1], f[3]),
            _ => continue,
        };
        let date = NaiveDate::parse_from_str(date, "%Y%m%d").expect("date");
        let cents = (dollars.parse::<f64>().expect("amount") * 100.0).round() as i64;
        builder.push(id.parse::<u64>().expect("id"), date, cents).expect("record");
    }
    let log = builder.build();
    let loaded = started.elapsed();
    let options = AnalyzeOptions {
        time_unit: Some(TimeUnit::Week),
        calibration_end: NaiveDate::from_ymd_opt(1997, 9, 30),
        ..Default::default()
    };
    let analyze_started = Instant::now();
    let report = analyze(&log, &options, NaiveDate::from_ymd_opt(1998, 6, 30).unwrap()).expect("analyze");
    let analyzed = analyze_started.elapsed();
    std::fs::create_dir_all(&out).expect("output directory");
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    std::fs::write(out.join("report.html"), render_html(&report)).unwrap();
    let csv = std::fs::File::create(out.join("customers.csv")).unwrap();
    write_customers_csv(&report, std::io::BufWriter::new(csv)).unwrap();
    println!(
        "{}: {} records, {} customers; read and build {:.3} s, analyze (all four models) {:.3} s, total with writing {:.3} s; wrote {}",
        file,
        log.record_count(),
        report.customers,
        loaded.as_secs_f64(),
        analyzed.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
}

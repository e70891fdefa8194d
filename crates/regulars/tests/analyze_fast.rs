//! The analysis-only reader of generic CSV (`regulars_ingest::FactsReader`, used by `regulars analyze`)
//! must give exactly what the full import reader gives. A demo shop is written as generic CSV, then
//! roughened: several date shapes, decimal commas, padded and quoted values, escaped quotes, CRLF line
//! ends, empty lines, short and long rows, rows the full reader rejects (bad e-mail, time zone,
//! currency, quantity, birthday, date, refund, invalid UTF-8, empty order id), customers known only by
//! e-mail, an order split in two runs. `regulars analyze` then runs on it with small parts (so that
//! many are read fast, some by the full reader) and with `--full-reader`; the JSON, the customers CSV,
//! the counts and the rejects must be the same.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use regulars_demo::DemoConfig;

/// The demo shop as generic CSV records (header first).
fn demo_records(customers: u64) -> Vec<csv::StringRecord> {
    let config = DemoConfig::new(11, customers, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap());
    let mut bytes = Vec::new();
    regulars_demo::write_csv(config, &mut bytes).unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes.as_slice());
    reader.records().map(Result::unwrap).collect()
}

fn reshape_time(raw: &str, shape: u64) -> String {
    let Ok(at) = DateTime::parse_from_rfc3339(raw) else { return raw.to_owned() };
    let at = at.with_timezone(&Utc);
    match shape % 8 {
        0 => raw.to_owned(),
        1 => at.format("%Y-%m-%d %H:%M:%S").to_string(),
        2 => (at + Duration::hours(2)).format("%Y-%m-%dT%H:%M:%S+02:00").to_string(),
        3 => at.format("%d/%m/%Y %H:%M").to_string(),
        4 => at.format("%d.%m.%Y %H:%M:%S").to_string(),
        5 => at.timestamp().to_string(),
        6 => at.format("%Y-%m-%d").to_string(),
        _ => at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

/// A small hash, to choose what to do with an order.
fn pick(text: &str, salt: u64) -> u64 {
    text.bytes().fold(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15), |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The roughened file, as bytes; with rows the full reader rejects when `rejects`.
fn rough_csv(customers: u64, rejects: bool) -> Vec<u8> {
    let records = demo_records(customers);
    let mut out =
        csv::WriterBuilder::new().flexible(true).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    out.write_record(&records[0]).unwrap();
    let mut previous_order = String::new();
    let mut held_back: Vec<csv::StringRecord> = Vec::new();
    for (row, record) in records[1..].iter().enumerate() {
        let mut f: Vec<String> = record.iter().map(str::to_owned).collect();
        let order = f[0].clone();
        let customer = f[1].clone();
        let first = order != previous_order;
        previous_order = order.clone();
        let o = pick(&order, 1);
        let c = pick(&customer, 2);
        // Several date shapes (the first row of an order decides).
        f[10] = reshape_time(&f[10], o);
        if !f[19].is_empty() {
            f[19] = reshape_time(&f[19], o / 8);
        }
        // Amounts: decimal commas, padding, no trailing zero.
        match o % 5 {
            0 => f[16] = f[16].replace('.', ","),
            1 => f[16] = format!(" {} ", f[16]),
            2 => f[16] = f[16].trim_end_matches('0').trim_end_matches('.').to_owned(),
            _ => {}
        }
        // Customers known by e-mail only, padded and quoted customer ids.
        match c % 13 {
            // (Without an e-mail, that rejects the order.)
            0 if rejects || !first || !f[2].is_empty() => f[1] = String::new(),
            1 => f[1] = format!(" {} ", f[1]),
            _ => {}
        }
        if c.is_multiple_of(11) {
            f[2] = f[2].to_uppercase();
        }
        // SKUs padded, long (more than 16 bytes), not ASCII, and quoted with escaped quotes.
        match pick(&format!("{order}/{row}/sku"), 5) % 13 {
            0 => f[12] = format!(" {} ", f[12]),
            1 => f[12] = format!("{}-with-a-long-suffix", f[12]),
            2 => f[12] = format!("{}-é", f[12]),
            3 => f[12] = format!("{}, \"x\"", f[12]),
            4 if o.is_multiple_of(2) => f[12] = format!("{}\t", f[12]),
            _ => {}
        }
        // Escaped quotes, line ends kept for later.
        if o.is_multiple_of(7) {
            f[13] = format!("{} \"special\"", f[13]);
        }
        // Rows the full reader rejects.
        if first && rejects {
            match o % 499 {
                0 => f[2] = "not-an-email".into(),
                1 => f[7] = "Mars/Olympus".into(),
                2 => f[11] = "EUX".into(),
                3 => f[5] = "2099-01-01".into(),
                4 => f[10] = "2025-02-30 10:00".into(),
                5 => f[8] = "perhaps".into(),
                6 => f[4] = "12".into(),
                _ => {}
            }
        }
        match pick(&format!("{order}/{row}"), 3) % if rejects { 1499 } else { u64::MAX } {
            0 => f[15] = "0".into(),
            1 => f[18] = "99".into(),
            2 => f[12] = String::new(),
            3 => f[16] = "-1.00".into(),
            4 => f[0] = String::new(),
            _ => {}
        }
        // Short rows (trailing empty fields left out) and long rows.
        if f[17].is_empty() && f[18].is_empty() && o.is_multiple_of(3) {
            f.truncate(17);
        } else if o % 3 == 1 {
            f.push("extra".into());
        }
        // One order split in two runs: its second row comes later.
        if o % 150 == 7 && !first && held_back.len() < 3 {
            held_back.push(csv::StringRecord::from(f));
            continue;
        }
        out.write_record(&f).unwrap();
        if row % 1000 == 999 {
            for held in held_back.drain(..) {
                out.write_record(&held).unwrap();
            }
        }
    }
    let text = out.into_inner().unwrap();
    // Line-level roughness: CRLF ends, empty lines, a quote inside a plain field, invalid UTF-8.
    let mut bytes = Vec::with_capacity(text.len() + 1024);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            bytes.push(b'\n');
        }
        let mut line = line.to_vec();
        if i > 0 && !line.is_empty() {
            match pick(&i.to_string(), 4) % 400 {
                0 => line.extend_from_slice(b"\r"),
                1 => bytes.push(b'\n'),
                2 if rejects => {
                    if let Some(at) = line.iter().position(|&b| b == b'@') {
                        line[at - 1] = 0xff;
                    }
                }
                3 if rejects => {
                    if let Some(at) = line.windows(5).position(|w| w == b",Tea,") {
                        line.splice(at + 1..at + 1, *b"5\" ");
                    }
                }
                _ => {}
            }
        }
        bytes.extend_from_slice(&line);
    }
    bytes
}

struct Run {
    json: String,
    customers: String,
    summary: String,
    stderr: String,
}

fn analyze(file: &Path, extra: &[&str]) -> Run {
    let dir = file.parent().unwrap();
    let json = dir.join("out.json");
    let csv = dir.join("out.csv");
    let mut args = vec!["analyze", file.to_str().unwrap(), "--json", json.to_str().unwrap()];
    args.extend_from_slice(&["--customers", csv.to_str().unwrap(), "--models", "bg_nbd,gamma_gamma"]);
    args.extend_from_slice(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_regulars")).args(&args).output().expect("run regulars");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "regulars analyze {extra:?} failed: {stderr}");
    Run {
        json: std::fs::read_to_string(&json).unwrap(),
        customers: std::fs::read_to_string(&csv).unwrap(),
        summary: String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_owned(),
        stderr,
    }
}

/// The counts of the first summary line, without the timing.
fn counts(summary: &str) -> &str {
    summary.split("; read in").next().unwrap()
}

fn same_results(file: &Path, part_bytes: &str) -> (Run, Run) {
    let fast = analyze(file, &["--part-bytes", part_bytes]);
    let full = analyze(file, &["--full-reader"]);
    assert_eq!(counts(&fast.summary), counts(&full.summary));
    assert_eq!(fast.stderr, full.stderr, "rejects differ");
    assert!(fast.json == full.json, "JSON differs");
    assert!(fast.customers == full.customers, "customers CSV differs");
    (fast, full)
}

#[test]
fn the_fast_reader_gives_what_the_full_reader_gives() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rough.csv");
    std::fs::write(&file, rough_csv(600, true)).unwrap();
    let (fast, full) = same_results(&file, "6000");
    // The file really is rough, and both ways of reading were taken.
    assert!(full.stderr.contains("rejected and left out"), "{}", full.stderr);
    assert!(fast.summary.contains("parts in parallel"), "{}", fast.summary);
    assert!(fast.summary.contains("by the full reader"), "{}", fast.summary);
    assert!(!full.summary.contains("parts in parallel"), "{}", full.summary);
    let rejected: u64 =
        counts(&fast.summary).split(", ").find_map(|p| p.strip_suffix(" rejected")?.parse().ok()).unwrap();
    assert!(rejected > 10, "{}", fast.summary);

    // The same roughness without rejects: every part is read fast.
    let smooth = dir.path().join("smooth.csv");
    std::fs::write(&smooth, rough_csv(600, false)).unwrap();
    let (fast, _) = same_results(&smooth, "6000");
    assert!(fast.summary.contains("parts in parallel") && !fast.summary.contains("full reader"), "{}", fast.summary);

    // The demo file as written: every part is read fast.
    let plain = dir.path().join("plain.csv");
    let mut bytes = Vec::new();
    regulars_demo::write_csv(DemoConfig::new(5, 300, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()), &mut bytes)
        .unwrap();
    std::fs::write(&plain, bytes).unwrap();
    let (fast, _) = same_results(&plain, "20000");
    assert!(fast.summary.contains("parts in parallel") && !fast.summary.contains("full reader"), "{}", fast.summary);
}

#[test]
fn a_line_break_inside_quotes_sends_the_whole_file_to_the_full_reader() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("multiline.csv");
    let mut bytes = rough_csv(120, true);
    // A product name holding a line break, well inside the file.
    let at = bytes.len() * 2 / 3;
    let at = at + bytes[at..].windows(5).position(|w| w == b",Tea,").unwrap();
    // (The row gets a field more, so the full reader rejects it: quantity is then "Tea".)
    bytes.splice(at + 1..at + 1, *b"\"two\nlines\",");
    std::fs::write(&file, &bytes).unwrap();
    let (fast, _) = same_results(&file, "4000");
    assert!(!fast.summary.contains("parts in parallel"), "{}", fast.summary);
}

/// A CDNOW-format log (`customer date cds value`), roughened: padded and tab-separated words, CRLF line
/// ends, blank lines, several lines for one customer and day, sample-style lines with a second id,
/// customer ids holding `-`, and, with `rejects`, lines the full reader rejects (a bad date, no CDs, a
/// negative value, a missing word, text that is not ASCII), and dates written with dashes.
fn rough_cdnow(customers: u64, header: bool, rejects: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if header {
        out.extend_from_slice(b"customer_id date number_of_cds dollar_value\n");
    }
    let start = NaiveDate::from_ymd_opt(1997, 1, 1).unwrap();
    for c in 0..customers {
        let id = if c % 17 == 3 { format!("{c:05}-b") } else { format!("{c:05}") };
        let visits = 1 + pick(&id, 1) % 9;
        let mut day = start + Duration::days((pick(&id, 2) % 90) as i64);
        for v in 0..visits {
            let h = pick(&format!("{id}/{v}"), 3);
            let date = day.format("%Y%m%d").to_string();
            let cds = 1 + h % 4;
            let value = format!("{}.{:02}", h % 80, h % 100);
            let mut line = match h % 7 {
                0 => format!("  {id}\t{date}   {cds}\t{value}  \r\n"),
                1 => format!("{} {id} {date} {cds} {value}\n", c + 50_000),
                2 => format!("{id} {date} {cds} {value}\n{id} {date} 1 0.99\n"),
                _ => format!("{id} {date} {cds} {value}\n"),
            };
            if h.is_multiple_of(23) {
                line.push_str(" \t \n\n");
            }
            if rejects {
                match h % 211 {
                    0 => line = format!("{id} 19970231 {cds} {value}\n"),
                    1 => line = format!("{id} {date} 0 {value}\n"),
                    2 => line = format!("{id} {date} {cds} -{value}\n"),
                    3 => line = format!("{id} {date} {value}\n"),
                    4 => line = format!("{id}é {date} {cds} {value}\n"),
                    5 => line = format!("{id} 1997-01-{:02} {cds} {value}\n", 1 + h % 28),
                    _ => {}
                }
            }
            out.extend_from_slice(line.as_bytes());
            day += Duration::days(1 + (h % 40) as i64);
        }
    }
    out
}

#[test]
fn the_fast_reader_reads_cdnow_logs_as_the_full_reader_does() {
    let dir = tempfile::tempdir().unwrap();
    for (name, header, rejects) in [("plain", false, false), ("header", true, false), ("rejects", true, true)] {
        let file = dir.path().join(format!("{name}.txt"));
        std::fs::write(&file, rough_cdnow(800, header, rejects)).unwrap();
        for part_bytes in ["700", "5000"] {
            let fast = analyze(&file, &["--format", "cdnow", "--part-bytes", part_bytes]);
            let full = analyze(&file, &["--format", "cdnow", "--full-reader"]);
            assert_eq!(counts(&fast.summary), counts(&full.summary), "{name} {part_bytes}");
            assert_eq!(fast.stderr, full.stderr, "{name} {part_bytes}: rejects differ");
            assert!(fast.json == full.json, "{name} {part_bytes}: JSON differs");
            assert!(fast.customers == full.customers, "{name} {part_bytes}: customers CSV differ");
            assert!(fast.summary.contains("parts in parallel"), "{}", fast.summary);
            assert_eq!(rejects, fast.summary.contains("by the full reader"), "{}", fast.summary);
            assert_eq!(rejects, full.stderr.contains("rejected and left out"), "{}", full.stderr);
        }
    }
}

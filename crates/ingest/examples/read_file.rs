//! Reads a file to the end and prints counts and speed, for benchmarks:
//! `cargo run --release -p regulars-ingest --example read_file -- FILE [FORMAT]`.

use std::time::Instant;

use regulars_ingest::{OrderReader, ReadOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: read_file FILE [FORMAT]")?;
    let format = args.next().map_or(Ok(Default::default()), |f| f.parse())?;
    let started = Instant::now();
    let mut reader = OrderReader::open(&path, &ReadOptions { format, ..ReadOptions::default() })?;
    let detected = reader.detected().to_string();
    let (mut lines, mut first_rejection) = (0u64, None);
    for item in &mut reader {
        match item {
            Ok(order) => lines += order.order.lines.len() as u64,
            Err(rejected) => {
                first_rejection.get_or_insert(rejected);
            }
        }
    }
    let summary = reader.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{path} ({detected}): {} rows, {} orders ({lines} lines), {} rejected, {} skipped in {seconds:.2} s \
         ({:.0} rows/s)",
        summary.rows,
        summary.orders,
        summary.rejected,
        summary.skipped,
        summary.rows as f64 / seconds
    );
    if let Some(rejected) = first_rejection {
        println!("first rejection: {rejected}");
    }
    Ok(())
}

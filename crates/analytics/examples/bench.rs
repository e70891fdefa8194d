//! Times each analytics stage on a synthetic log (default 1,000,000 customers, about 10 M purchases).
//!
//! Run: `CARGO_BUILD_JOBS=1 cargo run --release -p regulars-analytics --example bench -- [customers]`

use std::time::Instant;

use chrono::NaiveDate;
use rayon::prelude::*;
use regulars_analytics::models::{
    BgNbd, BgNbdParams, BtydData, ClvInputs, GammaGamma, GammaGammaParams, MbgNbd, ParetoNbd, PurchaseModel,
    customer_lifetime_values,
};
use regulars_analytics::report::{AnalyzeOptions, ModelSelection};
use regulars_analytics::synth::{PurchaseProcess, SyntheticConfig, generate_customers};
use regulars_analytics::{LogOptions, TimeUnit, TransactionLogBuilder, analyze, summarize};

fn main() {
    let customers: usize = std::env::args().nth(1).map(|s| s.parse().expect("customers")).unwrap_or(1_000_000);
    let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let end = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
    let cfg = SyntheticConfig::new(
        PurchaseProcess::BgNbd(BgNbdParams { r: 2.0, alpha: 13.0, a: 0.6, b: 12.0 }),
        GammaGammaParams { p: 6.0, q: 4.0, v: 15.0 },
        customers,
        start,
        end,
        42,
    );
    println!("threads: {}", rayon::current_num_threads());
    let t = Instant::now();
    let generated = generate_customers(&cfg).unwrap();
    let records: usize = generated.iter().map(|c| c.purchases.len()).sum();
    println!(
        "generate {customers} customers, {records} purchases: {:.3} s (not part of analysis)",
        t.elapsed().as_secs_f64()
    );

    let total = Instant::now();
    let t = Instant::now();
    let mut builder = TransactionLogBuilder::with_capacity(LogOptions::default(), records);
    for c in &generated {
        for p in &c.purchases {
            builder.push(c.index, p.at, p.amount_minor).unwrap();
        }
    }
    println!("push records: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let log = builder.build();
    println!("build log ({} transactions): {:.3} s", log.transaction_count(), t.elapsed().as_secs_f64());
    drop(generated);

    let t = Instant::now();
    let s = summarize(&log, end, TimeUnit::Week).unwrap();
    println!("summarize: {:.3} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let data = BtydData::from_summaries(&s).unwrap();
    println!("model data ({} distinct rows): {:.3} s", data.rows(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let bg = BgNbd::fit(&data).unwrap();
    println!(
        "bg/nbd fit: {:.3} s ({} evaluations) {:?}",
        t.elapsed().as_secs_f64(),
        bg.diagnostics.evaluations,
        bg.model.params
    );
    let t = Instant::now();
    let gg = GammaGamma::fit(&s.frequency, &s.monetary_value).unwrap();
    println!("gamma-gamma fit: {:.3} s {:?}", t.elapsed().as_secs_f64(), gg.model.params);
    let t = Instant::now();
    let values: Vec<Option<f64>> = (0..s.len())
        .into_par_iter()
        .map(|i| gg.model.expected_average_value(s.frequency[i], s.monetary_value[i]).ok())
        .collect();
    let inputs = ClvInputs { frequency: &s.frequency, recency: &s.recency, age: &s.age, expected_value: &values };
    let clv: Vec<f64> = customer_lifetime_values(&bg.model, TimeUnit::Week, inputs, 12, 0.01)
        .unwrap()
        .into_iter()
        .map(|v| v.unwrap_or(0.0))
        .collect();
    println!(
        "clv 12 months: {:.3} s (mean {:.0})",
        t.elapsed().as_secs_f64(),
        clv.iter().sum::<f64>() / clv.len() as f64
    );
    let t = Instant::now();
    let alive: f64 = (0..s.len())
        .into_par_iter()
        .map(|i| bg.model.probability_alive(s.frequency[i] as f64, s.recency[i], s.age[i]).unwrap())
        .sum();
    println!("p(alive): {:.3} s (mean {:.3})", t.elapsed().as_secs_f64(), alive / s.len() as f64);
    let t = Instant::now();
    let table = regulars_analytics::rfm(&s, &regulars_analytics::SegmentMap::default());
    println!("rfm: {:.3} s ({} segments)", t.elapsed().as_secs_f64(), table.segments.len());
    let t = Instant::now();
    let cohorts = regulars_analytics::cohort_table(&log, regulars_analytics::Period::Month, end).unwrap();
    println!("cohorts (month): {:.3} s ({} cohorts)", t.elapsed().as_secs_f64(), cohorts.len());
    let t = Instant::now();
    let periods = regulars_analytics::period_metrics(&log, regulars_analytics::Period::Month, end).unwrap();
    println!("period metrics (month): {:.3} s ({} periods)", t.elapsed().as_secs_f64(), periods.len());
    let t = Instant::now();
    let mbg = MbgNbd::fit(&data).unwrap();
    println!("mbg/nbd fit: {:.3} s ({} evaluations)", t.elapsed().as_secs_f64(), mbg.diagnostics.evaluations);
    println!("stages above, from push to period metrics: {:.3} s", total.elapsed().as_secs_f64());

    let t = Instant::now();
    let curve = regulars_analytics::checking::tracking_curve(&log, &s, &bg.model, end, 7).unwrap();
    println!("tracking curve: {:.3} s ({} weeks)", t.elapsed().as_secs_f64(), curve.len());
    let t = Instant::now();
    let histogram = regulars_analytics::checking::frequency_histogram(&s, &bg.model, 7).unwrap();
    println!("frequency histogram: {:.3} s ({} bins)", t.elapsed().as_secs_f64(), histogram.actual.len());
    let t = Instant::now();
    let gaps = regulars_analytics::rhythm::gap_figures_of(&log, &s.customer, end);
    println!(
        "gap figures: {:.3} s ({} overdue)",
        t.elapsed().as_secs_f64(),
        gaps.overdue.iter().filter(|o| **o).count()
    );
    let options = AnalyzeOptions {
        models: ModelSelection { bg_nbd: true, mbg_nbd: false, pareto_nbd: false, gamma_gamma: true },
        ..Default::default()
    };
    let t = Instant::now();
    let report = analyze(&log, &options, end).unwrap();
    println!(
        "analyze (summary, BG/NBD, Gamma-Gamma, CLV, RFM, cohorts, metrics, checks): {:.3} s; {} customers, {} transactions",
        t.elapsed().as_secs_f64(),
        report.customers,
        report.transactions
    );
    if std::env::var("BENCH_PARETO").is_err() {
        println!("(set BENCH_PARETO=1 to time the Pareto/NBD fit and analyze with all four models)");
        return;
    }
    let t = Instant::now();
    let report = analyze(&log, &AnalyzeOptions::default(), end).unwrap();
    println!(
        "analyze with all four models: {:.3} s ({} model errors)",
        t.elapsed().as_secs_f64(),
        report.models.errors.len()
    );
    let t = Instant::now();
    let pareto = ParetoNbd::fit(&data).unwrap();
    println!(
        "pareto/nbd fit: {:.3} s ({} evaluations) {:?}",
        t.elapsed().as_secs_f64(),
        pareto.diagnostics.evaluations,
        pareto.model.params
    );
}

//! Fits recover the true parameters of synthetic data within sampling error (4 standard errors).

use chrono::NaiveDate;
use regulars_analytics::models::{
    BgNbd, BgNbdParams, BtydData, GammaGamma, GammaGammaParams, ParetoNbd, ParetoNbdParams,
};
use regulars_analytics::synth::{PurchaseProcess, SyntheticConfig, generate_log};
use regulars_analytics::{LogOptions, TimeUnit, summarize};

fn config(process: PurchaseProcess, seed: u64) -> SyntheticConfig {
    let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let end = NaiveDate::from_ymd_opt(2024, 6, 29).unwrap(); // 78 weeks
    SyntheticConfig::new(process, GammaGammaParams { p: 6.0, q: 4.0, v: 15.0 }, 8_000, start, end, seed)
}

fn within(name: &str, estimate: f64, truth: f64, standard_error: f64) {
    assert!(
        (estimate - truth).abs() <= 4.0 * standard_error,
        "{name}: estimate {estimate}, truth {truth}, standard error {standard_error}"
    );
}

#[test]
fn bg_nbd_and_gamma_gamma_recover_the_truth() {
    let truth = BgNbdParams { r: 0.5, alpha: 5.0, a: 0.8, b: 2.5 };
    let cfg = config(PurchaseProcess::BgNbd(truth), 11);
    let log = generate_log(&cfg, LogOptions::default()).unwrap();
    let s = summarize(&log, cfg.end, TimeUnit::Week).unwrap();
    let fit = BgNbd::fit(&BtydData::from_summaries(&s).unwrap()).unwrap();
    let se = fit.diagnostics.standard_errors.clone().unwrap();
    let p = fit.model.params;
    within("r", p.r, truth.r, se["r"]);
    within("alpha", p.alpha, truth.alpha, se["alpha"]);
    within("a", p.a, truth.a, se["a"]);
    within("b", p.b, truth.b, se["b"]);

    let dollars: Vec<f64> = s.monetary_value.iter().map(|m| m / 100.0).collect();
    let gg = GammaGamma::fit(&s.frequency, &dollars).unwrap();
    let se = gg.diagnostics.standard_errors.clone().unwrap();
    within("p", gg.model.params.p, 6.0, se["p"]);
    within("q", gg.model.params.q, 4.0, se["q"]);
    within("v", gg.model.params.v, 15.0, se["v"]);
}

#[test]
fn pareto_nbd_recovers_the_truth() {
    let truth = ParetoNbdParams { r: 0.6, alpha: 8.0, s: 0.8, beta: 12.0 };
    let cfg = config(PurchaseProcess::ParetoNbd(truth), 12);
    let log = generate_log(&cfg, LogOptions::default()).unwrap();
    let s = summarize(&log, cfg.end, TimeUnit::Week).unwrap();
    let fit = ParetoNbd::fit(&BtydData::from_summaries(&s).unwrap()).unwrap();
    let se = fit.diagnostics.standard_errors.clone().unwrap();
    let p = fit.model.params;
    within("r", p.r, truth.r, se["r"]);
    within("alpha", p.alpha, truth.alpha, se["alpha"]);
    within("s", p.s, truth.s, se["s"]);
    within("beta", p.beta, truth.beta, se["beta"]);
}

#[test]
fn fits_do_not_depend_on_the_number_of_threads() {
    let truth = BgNbdParams { r: 0.5, alpha: 5.0, a: 0.8, b: 2.5 };
    let cfg = config(PurchaseProcess::BgNbd(truth), 13);
    let log = generate_log(&cfg, LogOptions::default()).unwrap();
    let s = summarize(&log, cfg.end, TimeUnit::Week).unwrap();
    let data = BtydData::from_summaries(&s).unwrap();
    let fit_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| (BgNbd::fit(&data).unwrap().model.params, ParetoNbd::fit(&data).unwrap().model.params))
    };
    assert_eq!(fit_with(1), fit_with(3));
}

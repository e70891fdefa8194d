//! P(X(t) = n) and P(X(T, T + t) = n | x, t_x, T) of the three purchase models against reference values
//! computed once outside this code base (2026-11-23, Python 3.11):
//!
//! * BG/NBD and MBG/NBD P(X(t) = n): `BetaGeoFitter` / `ModifiedBetaGeoFitter`
//!   `.probability_of_n_purchases_up_to_time(t, n)` of lifetimes 0.11.3;
//! * Pareto/NBD conditional: `ParetoNBDFitter.conditional_probability_of_n_purchases_up_to_time(n, t, x,
//!   t_x, T)` of lifetimes 0.11.3 (equation 16 of Fader and Hardie's note), and with x = t_x = T = 0 the
//!   unconditional P(X(t) = n);
//! * BG/NBD and MBG/NBD conditional (lifetimes has none): the definition integrated numerically over the
//!   posterior of (λ, p) with `scipy.integrate.dblquad` (epsrel 1e-11): ∫∫ [L_alive(λ, p) P(n | λ, p) +
//!   [n = 0] L_dead(λ, p)] dG / ∫∫ L dG, an independent route to the closed form used here.
//!
//! Parameters: Fader, Hardie and Lee's CDNOW BG/NBD fit (r = 0.243, α = 4.414, a = 0.793, b = 2.426),
//! also used for MBG/NBD, and the CDNOW Pareto/NBD fit (r = 0.5534, α = 10.5802, s = 0.6061,
//! β = 11.6562), and the same with α and β swapped (the other branch of the 2F1 term); t = 39 weeks.

use regulars_analytics::models::{BgNbd, BgNbdParams, MbgNbd, ParetoNbd, ParetoNbdParams, PurchaseModel};

const BG: BgNbdParams = BgNbdParams { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
const NS: [u32; 4] = [0, 1, 2, 5];

fn check(what: &str, actual: impl Fn(u32) -> f64, expected: [f64; 4], tolerance: f64) {
    for (n, expected) in NS.into_iter().zip(expected) {
        let actual = actual(n);
        assert!((actual - expected).abs() <= tolerance, "{what}, n = {n}: {actual} vs {expected}");
    }
}

#[test]
fn new_customers_match_lifetimes() {
    let bg = BgNbd::new(BG).unwrap();
    let mbg = MbgNbd::new(BG).unwrap();
    let bg_expected = [0.5737863520960094, 0.19939528083591135, 0.08542975953906072, 0.017965493866579044];
    let mbg_expected = [0.6787839981935129, 0.13703024082634008, 0.06428041955009586, 0.015325192201498153];
    check("bg/nbd", |n| bg.probability_of_purchases(n, 39.0).unwrap(), bg_expected, 1e-12);
    check("mbg/nbd", |n| mbg.probability_of_purchases(n, 39.0).unwrap(), mbg_expected, 1e-12);
    let pareto = |alpha, beta| ParetoNbd::new(ParetoNbdParams { r: 0.5534, alpha, s: 0.6061, beta }).unwrap();
    let expected = [0.5935759370282288, 0.16558437956850144, 0.08249794821517094, 0.021487398379436192];
    check("pareto/nbd", |n| pareto(10.5802, 11.6562).probability_of_purchases(n, 39.0).unwrap(), expected, 1e-10);
    let expected = [0.618185783152065, 0.1634431626749432, 0.07881558762398393, 0.01910529301211787];
    check("pareto/nbd α > β", |n| pareto(11.6562, 10.5802).probability_of_purchases(n, 39.0).unwrap(), expected, 1e-10);
}

fn conditional(model: &dyn PurchaseModel, x: f64, t_x: f64, age: f64) -> impl Fn(u32) -> f64 + '_ {
    move |n| model.conditional_probability_of_purchases(n, 39.0, x, t_x, age).unwrap()
}

#[test]
fn customers_with_a_history_match_the_references() {
    let bg = BgNbd::new(BG).unwrap();
    let mbg = MbgNbd::new(BG).unwrap();
    // Numerical integration: agreement to its accuracy.
    let expected = [0.4453728620827538, 0.2393189374351292, 0.14418322186475613, 0.022863812898121946];
    check("bg/nbd x = 2", conditional(&bg, 2.0, 30.43, 38.86), expected, 1e-8);
    let expected = [0.855449459390287, 0.10987298880032587, 0.02428411933475497, 0.0007774327360946098];
    check("bg/nbd x = 0", conditional(&bg, 0.0, 0.0, 38.86), expected, 1e-8);
    let expected = [0.4088541201587087, 0.24539448803131064, 0.1543052913288347, 0.02601120625482602];
    check("mbg/nbd x = 2", conditional(&mbg, 2.0, 30.43, 38.86), expected, 1e-8);

    let pareto = |alpha, beta| ParetoNbd::new(ParetoNbdParams { r: 0.5534, alpha, s: 0.6061, beta }).unwrap();
    /// α, β, (x, t_x, T), P(n) for n = 0, 1, 2, 5.
    type Case = (f64, f64, (f64, f64, f64), [f64; 4]);
    let cases: [Case; 6] = [
        (
            10.5802,
            11.6562,
            (2.0, 30.43, 38.86),
            [0.4080952823591622, 0.21926521337599167, 0.15174605207559397, 0.031982849873381985],
        ),
        (
            10.5802,
            11.6562,
            (0.0, 0.0, 38.86),
            [0.9307542802165345, 0.04586796967054999, 0.014670434020830861, 0.0008055249783553885],
        ),
        (
            10.5802,
            11.6562,
            (7.0, 35.0, 38.86),
            [0.13983320954024286, 0.08147465347492376, 0.09413232168800803, 0.10310185490001873],
        ),
        (
            11.6562,
            10.5802,
            (2.0, 30.43, 38.86),
            [0.4156807454659783, 0.22037306963104275, 0.15058653452481272, 0.030594085008190754],
        ),
        (
            11.6562,
            10.5802,
            (0.0, 0.0, 38.86),
            [0.9348970782862409, 0.04342459380918947, 0.013707688124402548, 0.0007252132329213082],
        ),
        (
            11.6562,
            10.5802,
            (7.0, 35.0, 38.86),
            [0.14366742360427098, 0.08439567568278872, 0.09704794647255983, 0.1032955964270688],
        ),
    ];
    for (alpha, beta, (x, t_x, age), expected) in cases {
        let model = pareto(alpha, beta);
        check(&format!("pareto/nbd α = {alpha}, x = {x}"), conditional(&model, x, t_x, age), expected, 1e-10);
    }
}

#[test]
fn probabilities_sum_to_one_and_average_to_the_expectation() {
    let models: Vec<Box<dyn PurchaseModel>> = vec![
        Box::new(BgNbd::new(BG).unwrap()),
        Box::new(MbgNbd::new(BG).unwrap()),
        Box::new(ParetoNbd::new(ParetoNbdParams { r: 0.5534, alpha: 10.5802, s: 0.6061, beta: 11.6562 }).unwrap()),
    ];
    for model in &models {
        for (x, t_x, age) in
            [(0.0, 0.0, 0.0), (0.0, 0.0, 38.86), (2.0, 30.43, 38.86), (12.0, 38.0, 38.86), (3.0, 38.86, 38.86)]
        {
            let t = 39.0;
            let p: Vec<f64> =
                (0..300).map(|n| model.conditional_probability_of_purchases(n, t, x, t_x, age).unwrap()).collect();
            let total: f64 = p.iter().sum();
            assert!((total - 1.0).abs() < 1e-7, "{} {x} {t_x} {age}: total {total}", model.name());
            let mean: f64 = p.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
            let expected = if age == 0.0 {
                model.expected_purchases_population(t).unwrap()
            } else {
                model.expected_purchases(t, x, t_x, age).unwrap()
            };
            assert!((mean - expected).abs() < 1e-6 * expected.max(1.0), "{}: mean {mean} vs {expected}", model.name());
        }
    }
}

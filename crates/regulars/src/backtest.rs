//! `regulars loyalty backtest`: the recorded orders and refunds replayed through a proposed program and the
//! current one, in memory (`loyalty::backtest`), with nothing written.
//!
//! **Redemptions expected** are an estimate: the points each program would issue times the share of issued
//! points customers actually redeemed in the stored ledger (redeemed / issued, over all time). With no
//! points issued in the ledger yet there is no ratio, and the figure is left out ("none recorded").

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use regulars_core::loyalty::Program;
use regulars_core::loyalty::backtest::{Figures, compare};
use serde_json::{Value, json};

use crate::DatabaseArg;

#[derive(Args)]
pub struct BacktestArgs {
    /// The proposed program (TOML)
    #[arg(long)]
    program: PathBuf,
    /// The program to compare with (TOML); the stored current program by default
    #[arg(long)]
    against: Option<PathBuf>,
    /// Replay orders placed and refunds made from this date (UTC, YYYY-MM-DD); all of them by default
    #[arg(long)]
    since: Option<NaiveDate>,
    /// Replay up to the start of this date (UTC, YYYY-MM-DD), where expiry and tiers are judged; now by default
    #[arg(long)]
    until: Option<NaiveDate>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArg,
}

fn read_program(path: &std::path::Path) -> Result<Program> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Program::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.field, e.message))
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// `points × redeemed / issued`, rounded down; `None` without a ratio.
fn expected(points: i64, ratio: Option<(i64, i64)>) -> Option<i64> {
    let (issued, redeemed) = ratio?;
    Some((i128::from(points) * i128::from(redeemed) / i128::from(issued)) as i64)
}

fn figures_json(f: &Figures, ratio: Option<(i64, i64)>) -> Value {
    json!({
        "points_issued": f.points_issued,
        "points_clawed_back": f.points_clawed_back,
        "points_expired": f.points_expired,
        "liability": f.liability,
        "redemptions_expected": expected(f.points_issued, ratio),
        "customers": f.customers,
        "tiers": f.tiers,
    })
}

pub async fn run(args: BacktestArgs) -> Result<()> {
    let proposed = read_program(&args.program)?;
    let store = crate::open(&args.db).await?;
    let (current, current_name) = match &args.against {
        Some(path) => (read_program(path)?, file_name(path)),
        None => match store.program().await? {
            Some(v) => ((*v.program).clone(), format!("stored program v{}", v.version)),
            None => bail!("no loyalty program is defined: define one, or compare with --against FILE"),
        },
    };
    let since = args.since.map_or(DateTime::UNIX_EPOCH, midnight);
    let until = args.until.map_or_else(Utc::now, midnight);
    if until < since {
        bail!("--until is before --since");
    }
    let history = store.loyalty_history(since).await.context("read the order history")?;
    let (issued, redeemed) = store.points_issued_and_redeemed().await?;
    store.close().await;
    let ratio = (issued > 0).then_some((issued, redeemed));
    let c = compare(&current, &proposed, &history, until);

    if args.json {
        let out = json!({
            "since": since.to_rfc3339(),
            "until": until.to_rfc3339(),
            "orders": history.orders.len(),
            "refunds": history.refunds.len(),
            "redemption_ratio": ratio.map(|(issued, redeemed)| json!({"issued": issued, "redeemed": redeemed})),
            "current": figures_json(&c.current, ratio),
            "proposed": figures_json(&c.proposed, ratio),
            "customers_in_different_tier": c.different_tier,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "backtest: {} orders and {} refunds from {} up to {}",
        history.orders.len(),
        history.refunds.len(),
        since.date_naive(),
        until.date_naive()
    );
    let proposed_name = file_name(&args.program);
    println!("{:<24} {:>20} {:>20}", "", truncate(&current_name), truncate(&proposed_name));
    let row = |label: &str, a: String, b: String| println!("{label:<24} {a:>20} {b:>20}");
    row("points issued", c.current.points_issued.to_string(), c.proposed.points_issued.to_string());
    row("points taken back", c.current.points_clawed_back.to_string(), c.proposed.points_clawed_back.to_string());
    row("points expired", c.current.points_expired.to_string(), c.proposed.points_expired.to_string());
    row("liability", c.current.liability.to_string(), c.proposed.liability.to_string());
    let shown = |p: i64| expected(p, ratio).map_or_else(|| "none recorded".to_owned(), |e| e.to_string());
    row("redemptions expected", shown(c.current.points_issued), shown(c.proposed.points_issued));
    let tiers = |f: &Figures| {
        if f.tiers.is_empty() {
            "none".to_owned()
        } else {
            f.tiers.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", ")
        }
    };
    row("customers by tier", tiers(&c.current), tiers(&c.proposed));
    println!("customers ending in a different tier: {}", c.different_tier);
    match ratio {
        Some((issued, redeemed)) => println!(
            "redemptions expected: points issued x {redeemed} / {issued}, the share of issued points redeemed in \
             the stored ledger"
        ),
        None => println!("redemptions expected: none recorded (no points were issued in the stored ledger yet)"),
    }
    Ok(())
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn truncate(name: &str) -> String {
    if name.chars().count() <= 20 {
        name.to_owned()
    } else {
        let tail: String = name.chars().rev().take(19).collect::<Vec<_>>().into_iter().rev().collect();
        format!("…{tail}")
    }
}

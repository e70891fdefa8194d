//! `regulars loyalty backtest` as a user runs it: a small imported history, a program that doubles the
//! rate, figures that are exactly double, and nothing written.

use std::process::Command;

use serde_json::Value;

fn regulars() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regulars"))
}

fn run(args: &[&str], db: &str) -> (bool, String, String) {
    let out = regulars().args(args).env("REGULARS_DATABASE", db).output().expect("run regulars");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PROGRAM: &str = r#"
name = "Single"
currency = "EUR"

[earning]
points_per_unit = 1

[tiers]
measure = "points_earned"
window_days = 365
levels = [{ name = "Silver", threshold = 30 }]
"#;

#[test]
fn a_program_that_doubles_the_rate_doubles_the_points_issued() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("regulars.db").display());
    let file = dir.path().join("orders.csv");
    let rows = [
        "order_id,customer_id,email,placed_at,currency,sku,quantity,unit_price",
        "o0,c3,c@example.com,2025-12-01,EUR,TEA,1,4.00",
        "o1,c1,a@example.com,2026-01-05,EUR,LATTE,2,3.00",
        "o2,c2,b@example.com,2026-01-10,EUR,BEANS,2,12.00",
        "o3,c1,a@example.com,2026-02-01,EUR,BEANS,1,25.00",
    ];
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();
    let (ok, out, err) = run(&["import", file.to_str().unwrap(), "--format", "generic"], &db);
    assert!(ok, "{out}{err}");
    let single = dir.path().join("single.toml");
    let double = dir.path().join("double.toml");
    std::fs::write(&single, PROGRAM).unwrap();
    std::fs::write(&double, PROGRAM.replace("points_per_unit = 1", "points_per_unit = 2")).unwrap();
    let (p, s, d) = (double.to_str().unwrap(), single.to_str().unwrap(), "2026-01-01");

    // Without a stored program there is nothing to compare with, unless --against names one.
    let (ok, _, err) = run(&["loyalty", "backtest", "--program", p, "--since", d], &db);
    assert!(!ok && err.contains("no loyalty program is defined"), "{err}");

    let args = ["loyalty", "backtest", "--program", p, "--against", s, "--since", d, "--until", "2026-03-01", "--json"];
    let (ok, out, err) = run(&args, &db);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&report["orders"], &report["refunds"]), (&Value::from(3), &Value::from(0)), "{report}");
    // 6.00 + 24.00 + 25.00 EUR since 1 January (the December order is before): 55 points, and 110.
    let (current, proposed) = (&report["current"], &report["proposed"]);
    assert_eq!(current["points_issued"], 55, "{report}");
    assert_eq!(proposed["points_issued"], 110, "{report}");
    assert_eq!((&current["liability"], &proposed["liability"]), (&Value::from(55), &Value::from(110)));
    assert_eq!(current["redemptions_expected"], Value::Null, "no redemptions recorded");
    assert_eq!(report["redemption_ratio"], Value::Null);
    // Silver at 30 points: c1 (31) only, under the current program; c1 (62) and c2 (48) under the proposed.
    assert_eq!((&current["tiers"]["Silver"], &proposed["tiers"]["Silver"]), (&Value::from(1), &Value::from(2)));
    assert_eq!(report["customers_in_different_tier"], 1);

    // With a stored program and redemptions in the ledger: redemptions expected at the recorded ratio.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let postings_before = runtime.block_on(async {
        use regulars_core::loyalty::{Command as Ledger, Points, Request, RequestId};
        let store = regulars_store::Store::open(&db).await.unwrap();
        let now = chrono::Utc::now();
        store.set_program(PROGRAM.to_owned(), now, None).await.unwrap();
        let customer = regulars_core::CustomerId::from_key(1);
        let line = regulars_core::OrderLine::new(
            regulars_core::Sku::parse("sku", "BEANS").unwrap(),
            None,
            regulars_core::Quantity::new("q", 1).unwrap(),
            1000,
            0,
        )
        .unwrap();
        let placed = chrono::DateTime::parse_from_rfc3339("2026-02-10T09:00:00Z").unwrap().to_utc();
        let draft = regulars_core::OrderDraft::new(
            None,
            regulars_core::order::CustomerRef::Id(customer),
            placed,
            regulars_core::Currency::parse("c", "EUR").unwrap(),
            vec![line],
        )
        .unwrap();
        store.record_order(draft, now, None).await.unwrap();
        let redeem = Ledger::Redeem { points: Points::new(5), note: None };
        store
            .ledger_execute(customer, Request { id: RequestId::parse("id", "r").unwrap(), command: redeem }, now, None)
            .await
            .unwrap();
        let postings = store.wallet_history(customer).await.unwrap().unwrap().postings.len();
        store.close().await;
        postings
    });
    let args = ["loyalty", "backtest", "--program", p, "--since", d, "--until", "2026-03-01", "--json"];
    let (ok, out, err) = run(&args, &db);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["redemption_ratio"], serde_json::json!({"issued": 10, "redeemed": 5}), "{report}");
    assert_eq!(
        (&report["current"]["points_issued"], &report["proposed"]["points_issued"]),
        (&Value::from(65), &Value::from(130))
    );
    assert_eq!(report["current"]["redemptions_expected"], 32, "65 x 5 / 10, rounded down");
    assert_eq!(report["proposed"]["redemptions_expected"], 65);

    // The table says the same, and the backtest wrote nothing.
    let (ok, out, err) = run(&["loyalty", "backtest", "--program", p, "--since", d, "--until", "2026-03-01"], &db);
    assert!(ok, "{err}");
    assert!(out.contains("stored program v1") && out.contains("points issued"), "{out}");
    assert!(out.contains("customers ending in a different tier: 1"), "{out}");
    let postings_after = runtime.block_on(async {
        let store = regulars_store::Store::open(&db).await.unwrap();
        let n = store.wallet_history(regulars_core::CustomerId::from_key(1)).await.unwrap().unwrap().postings.len();
        store.close().await;
        n
    });
    assert_eq!(postings_after, postings_before);
}

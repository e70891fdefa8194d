//! Tiers and "points expiring" reminders in the store, on SQLite and on PostgreSQL: concurrent writers record
//! each tier change and each reminder once, and the rows are append-only.

use chrono::{DateTime, Duration, TimeZone, Utc};
use regulars_core::order::CustomerRef;
use regulars_core::{
    Currency, CustomerDraft, CustomerId, ExternalId, OrderDraft, OrderId, OrderLine, Quantity, RefundDraft,
    RefundDraftKind, Sku,
};
use regulars_store::Store;
use regulars_testkit::TestDb;

const PROGRAM: &str = r#"
name = "Tiers and reminders"
currency = "EUR"
expiry = { after_days = 40 }
expiry_reminder_days = [7, 30]

[earning]
points_per_unit = 1

[tiers]
measure = "points_earned"
window_days = 30
grace_days = 10
levels = [{ name = "Silver", threshold = 100, multiplier = "1.5" }]
"#;

regulars_testkit::on_both_databases!(
    concurrent_jobs_record_each_reminder_once,
    concurrent_orders_upgrade_once_and_the_rows_are_append_only,
    the_backtest_of_the_current_program_replays_what_the_ledger_did,
);

fn at(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::days(days)
}

async fn customer(s: &Store, external_id: &str) -> CustomerId {
    let draft = CustomerDraft { external_id: Some(ExternalId::parse("e", external_id).unwrap()), ..Default::default() };
    s.enrol_customer(draft, None, at(0), None).await.unwrap().id
}

async fn order(s: &Store, customer: CustomerId, external_id: &str, euros: i64, now: DateTime<Utc>) -> OrderId {
    let line = OrderLine::new(Sku::parse("s", "BEANS").unwrap(), None, Quantity::new("q", 1).unwrap(), euros * 100, 0)
        .unwrap();
    let draft = OrderDraft::new(
        Some(ExternalId::parse("e", external_id).unwrap()),
        CustomerRef::Id(customer),
        now,
        Currency::parse("c", "EUR").unwrap(),
        vec![line],
    )
    .unwrap();
    s.record_order(draft, now, None).await.unwrap().0.id
}

async fn concurrent_jobs_record_each_reminder_once(db: &TestDb) {
    let s = &db.store;
    s.set_program(PROGRAM.into(), at(0), None).await.unwrap();
    for i in 0..3 {
        let c = customer(s, &format!("c{i}")).await;
        order(s, c, &format!("o{i}"), 20, at(0)).await;
    }
    assert_eq!(s.record_expiry_reminders(at(9)).await.unwrap(), 0, "31 days left");
    for (day, total) in [(30, 3), (33, 6)] {
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.record_expiry_reminders(at(day)).await.unwrap() })
            })
            .collect();
        let mut recorded = 0;
        for job in jobs {
            recorded += job.await.unwrap();
        }
        assert_eq!(recorded, 3, "day {day}: one reminder per lot, whichever job recorded it");
        let events = s.loyalty_events(Some("points_expiring".into()), 0, 100).await.unwrap();
        assert_eq!(events.len(), total);
        assert!(events.iter().all(|e| e.points == Some(20) && e.expires_at == Some(at(40))));
    }
    assert_eq!(s.loyalty_events(None, 0, 100).await.unwrap().len(), 6);
    assert_eq!(s.loyalty_events(Some("birthday".into()), 0, 100).await.unwrap().len(), 0);
}

async fn concurrent_orders_upgrade_once_and_the_rows_are_append_only(db: &TestDb) {
    let s = &db.store;
    s.set_program(PROGRAM.into(), at(0), None).await.unwrap();
    let c = customer(s, "c1").await;
    let orders: Vec<_> = (0..10)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                order(&s, c, &format!("o{i}"), 20, at(0)).await;
            })
        })
        .collect();
    for o in orders {
        o.await.unwrap();
    }
    let tier = s.tier(c).await.unwrap().unwrap();
    assert_eq!(tier.tier.as_deref(), Some("Silver"));
    assert_eq!(tier.history.len(), 1, "one upgrade however the orders interleaved: {tier:?}");
    let change = &tier.history[0];
    assert_eq!((change.from.as_deref(), change.reason.as_str(), change.threshold), (None, "qualified", 100));
    assert!((100..120).contains(&change.measure), "{change:?}");
    // Orders after the upgrade earned at Silver's 1.5x: 4 or 5 orders before it, the rest after.
    let wallet = s.wallet(c, at(0)).await.unwrap().unwrap();
    let total = wallet.balances.available.get() + wallet.balances.pending.get();
    assert_eq!(total, change.measure + (200 - change.measure) * 3 / 2, "{change:?}");
    assert_eq!(s.verify_loyalty().await.unwrap().findings, vec![]);

    s.record_expiry_reminders(at(35)).await.unwrap();
    let refused = if db.url.starts_with("sqlite") {
        let conn = rusqlite::Connection::open(db.url.trim_start_matches("sqlite://")).unwrap();
        conn.execute("UPDATE loyalty_tier_changes SET to_tier = 'Gold'", []).is_err()
            && conn.execute("DELETE FROM loyalty_tier_changes", []).is_err()
            && conn.execute("DELETE FROM loyalty_events", []).is_err()
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE loyalty_tier_changes SET to_tier = 'Gold'").execute(&mut conn).await.is_err()
            && sqlx::query("DELETE FROM loyalty_tier_changes").execute(&mut conn).await.is_err()
            && sqlx::query("DELETE FROM loyalty_events").execute(&mut conn).await.is_err()
    };
    assert!(refused, "tier changes and events cannot be changed or deleted");
}

async fn the_backtest_of_the_current_program_replays_what_the_ledger_did(db: &TestDb) {
    // Orders recorded when they were placed, through the ledger, and the same history replayed in memory
    // through the same program: the same points, the same tiers (Silver's 1.5x included), the same
    // clawback and the same liability.
    let s = &db.store;
    s.set_program(PROGRAM.into(), at(0), None).await.unwrap();
    let (a, b) = (customer(s, "a").await, customer(s, "b").await);
    let mut ids = Vec::new();
    for (i, (who, day, euros)) in
        [(a, 0, 60), (b, 1, 30), (a, 2, 50), (a, 3, 33), (b, 5, 90), (b, 6, 7)].into_iter().enumerate()
    {
        ids.push(order(s, who, &format!("o{i}"), euros, at(day)).await);
    }
    let refund = RefundDraft {
        external_id: None,
        order_id: ids[4],
        refunded_at: at(8),
        reason: None,
        kind: RefundDraftKind::Whole,
    };
    s.record_refund(refund, at(8), None).await.unwrap();
    let history = s.loyalty_history(at(0)).await.unwrap();
    let program = s.program().await.unwrap().unwrap().program;
    let replayed = regulars_core::loyalty::backtest::replay(&program, &history, at(9));
    let (issued, _) = s.points_issued_and_redeemed().await.unwrap();
    assert_eq!(replayed.points_issued, issued);
    // a: 60 (Silver at 60 + 50 = 110), 50, then 33 x 1.5 = 49; b: 30, 90 (Silver at 120), then 7 x 1.5 = 10.
    assert_eq!(issued, 60 + 50 + 49 + 30 + 90 + 10);
    assert_eq!(replayed.points_clawed_back, 90);
    let mut liability = 0;
    for c in [a, b] {
        let w = s.wallet(c, at(9)).await.unwrap().unwrap();
        liability += (w.balances.available + w.balances.pending).get();
        let stored = s.tier(c).await.unwrap().unwrap().tier;
        assert_eq!(replayed.final_tiers[&c], stored, "{c}");
    }
    assert_eq!(replayed.liability, liability);
    let b_tier = s.tier(b).await.unwrap().unwrap();
    assert_eq!(b_tier.tier.as_deref(), Some("Silver"), "kept through the grace period");
    assert_eq!(b_tier.below_since, Some(at(8)), "the grace period started with the refund");
}

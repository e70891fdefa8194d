//! The loyalty ledger in the store: every test runs against SQLite and against PostgreSQL, like the
//! conformance suite. The PostgreSQL half needs `REGULARS_TEST_POSTGRES_URL` (set by `scripts/test`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use regulars_core::loyalty::{
    Clawback, Command, Earn, EarnPart, EarnReason, EarnRule, LotSource, OrderRef, Points, Refusal, Request, RequestId,
    Shortfall,
};
use regulars_core::order::CustomerRef;
use regulars_core::{
    Currency, CustomerDraft, CustomerId, ExternalId, OrderDraft, OrderLine, Quantity, RefundDraft, RefundDraftKind,
    RefundLine, Sku,
};
use regulars_store::{LedgerReceipt, Store, StoreError};
use regulars_testkit::{TestDb, tally};

fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn id(raw: &str) -> RequestId {
    RequestId::parse("id", raw).unwrap()
}

fn p(n: i64) -> Points {
    Points::new(n)
}

const PROGRAM: &str = r#"
name = "Coffee club"
currency = "EUR"
lock_days = 0
shortfall = "debt"

[earning]
points_per_unit = 1
welcome_bonus = 10
"#;

async fn customer(s: &Store, external_id: &str) -> CustomerId {
    let draft = CustomerDraft {
        external_id: Some(ExternalId::parse("external_id", external_id).unwrap()),
        ..CustomerDraft::default()
    };
    s.create_customer(draft, at(0), None).await.unwrap().id
}

async fn run(s: &Store, customer: CustomerId, request: &str, command: Command, now: DateTime<Utc>) -> LedgerReceipt {
    s.ledger_execute(customer, Request { id: id(request), command }, now, None).await.unwrap()
}

async fn refused(s: &Store, customer: CustomerId, request: &str, command: Command, now: DateTime<Utc>) -> Refusal {
    match s.ledger_execute(customer, Request { id: id(request), command }, now, None).await {
        Err(StoreError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn adjust(points: i64) -> Command {
    Command::Adjust { points: p(points), note: "opening balance".into(), expires_at: None }
}

fn redeem(points: i64) -> Command {
    Command::Redeem { points: p(points), note: Some("free croissant".into()) }
}

fn award(points: i64, now: DateTime<Utc>, lock_hours: i64, expiry_hours: Option<i64>) -> Command {
    Command::Earn(Earn {
        parts: vec![EarnPart {
            reason: EarnReason { rule: EarnRule::Event { name: "review".into() }, order: None },
            points: p(points),
        }],
        source: LotSource::Award,
        available_from: now + Duration::hours(lock_hours),
        expires_at: expiry_hours.map(|h| now + Duration::hours(h)),
    })
}

async fn assert_verified(s: &Store) {
    assert_eq!(s.verify_loyalty().await.unwrap().findings, vec![], "verify finds nothing");
}

fn eur_line(sku: &str, quantity: i64, unit_price_minor: i64) -> OrderLine {
    OrderLine::new(
        Sku::parse("sku", sku).unwrap(),
        None,
        Quantity::new("quantity", quantity).unwrap(),
        unit_price_minor,
        0,
    )
    .unwrap()
}

fn order(external_id: &str, customer: CustomerId, lines: Vec<OrderLine>) -> OrderDraft {
    OrderDraft::new(
        Some(ExternalId::parse("external_id", external_id).unwrap()),
        CustomerRef::Id(customer),
        at(0),
        Currency::parse("currency", "EUR").unwrap(),
        lines,
    )
    .unwrap()
}

regulars_testkit::on_both_databases!(
    the_program_is_versioned_and_checked,
    redeem_hold_capture_void_and_replays,
    concurrent_redemptions_never_overdraw,
    an_order_earns_once_however_often_it_is_recorded,
    a_refund_in_three_steps_takes_back_what_was_earned_and_no_more,
    time_matures_points_expires_lots_and_releases_holds,
    ledger_rows_are_append_only,
    coupons_hold_their_limits_under_concurrency,
    the_expiry_job_settles_every_wallet_where_something_is_due,
    verify_is_clean_while_writes_go_on,
);

async fn the_program_is_versioned_and_checked(db: &TestDb) {
    let s = &db.store;
    assert!(s.program().await.unwrap().is_none());
    let first = s.set_program(PROGRAM.into(), at(0), None).await.unwrap();
    assert_eq!((first.version, first.program.name.as_str()), (1, "Coffee club"));
    match s.set_program(PROGRAM.replace("points_per_unit = 1", "points_per_unit = -1"), at(1), None).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "program", "{e}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    match s.set_program(PROGRAM.replace("welcome_bonus = 10", "welcome_bonus = -10"), at(1), None).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "earning.welcome_bonus"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let second = s.set_program(PROGRAM.replace("Coffee club", "Tea club"), at(2), None).await.unwrap();
    let current = s.program().await.unwrap().unwrap();
    assert_eq!((second.version, current.version, current.program.name.as_str()), (2, 2, "Tea club"));
    assert_eq!(current.defined_at, at(2));
}

async fn redeem_hold_capture_void_and_replays(db: &TestDb) {
    let s = &db.store;
    let c = customer(s, "c1").await;
    let nobody = CustomerId::from_key(999_999);
    assert!(matches!(
        s.ledger_execute(nobody, Request { id: id("x"), command: adjust(5) }, at(0), None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.wallet(c, at(0)).await.unwrap().unwrap().balances.available, p(0), "an empty wallet");
    run(s, c, "a1", adjust(100), at(0)).await;
    let spent = run(s, c, "r1", redeem(30), at(0)).await;
    assert_eq!((spent.receipt.points, spent.balances.available), (p(30), p(70)));
    assert_eq!(
        refused(s, c, "r2", redeem(71), at(0)).await,
        Refusal::InsufficientPoints { available: p(70), requested: p(71) }
    );
    // A replay returns the first receipt; the same id with another amount is refused.
    let again = run(s, c, "r1", redeem(30), at(1)).await;
    assert!(again.replayed);
    assert_eq!((again.receipt, again.balances.available), (spent.receipt, p(70)));
    assert_eq!(refused(s, c, "r1", redeem(31), at(1)).await, Refusal::AmountMismatch);

    let hold = run(s, c, "h1", Command::PlaceHold { points: p(50), expires_at: at(2) }, at(1)).await;
    let (public, number) = (hold.hold.unwrap(), hold.receipt.hold.unwrap());
    assert_eq!((hold.balances.available, hold.balances.held), (p(20), p(50)));
    assert_eq!(s.hold_owner(public).await.unwrap(), Some((c, number)));
    let captured = run(s, c, "h1-capture", Command::Capture { hold: number, points: Some(p(20)) }, at(1)).await;
    assert_eq!((captured.hold, captured.balances.available, captured.balances.held), (Some(public), p(50), p(0)));
    assert_eq!(refused(s, c, "h1-void", Command::Void { hold: number }, at(1)).await, Refusal::HoldAlreadyResolved);
    let other = run(s, c, "h2", Command::PlaceHold { points: p(5), expires_at: at(2) }, at(1)).await;
    let voided = run(s, c, "h2-void", Command::Void { hold: other.receipt.hold.unwrap() }, at(1)).await;
    assert_eq!(voided.balances.available, p(50));

    let lines: Vec<String> = s.statement(c, at(1)).await.unwrap().unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "+100: adjustment, opening balance",
            "-30: redeemed, free croissant",
            "50: held for a checkout (hold 1)",
            "-20: spent at checkout (hold 1)",
            "30: hold 1 not spent, back to available",
            "5: held for a checkout (hold 2)",
            "5: hold 2 voided, back to available",
        ]
    );
    let history = s.wallet_history(c).await.unwrap().unwrap();
    assert_eq!(regulars_core::loyalty::verify(&history.state, &history.postings), vec![]);
    assert_verified(s).await;
}

async fn concurrent_redemptions_never_overdraw(db: &TestDb) {
    let s = &db.store;
    let c = customer(s, "hot").await;
    run(s, c, "opening", adjust(100), at(0)).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.ledger_execute(c, Request { id: id(&format!("till-{i}")), command: redeem(10) }, at(1), None).await
            })
        })
        .collect();
    let (accepted, insufficient) = tally(tasks, |r| matches!(r, Refusal::InsufficientPoints { .. })).await;
    assert_eq!((accepted.len(), insufficient), (10, 54));
    let wallet = s.wallet(c, at(1)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.lots.len()), (p(0), 0));
    assert_verified(s).await;
}

async fn an_order_earns_once_however_often_it_is_recorded(db: &TestDb) {
    let s = &db.store;
    let c = customer(s, "c1").await;
    // Before a program exists, orders earn nothing.
    s.record_order(order("before", c, vec![eur_line("LATTE", 1, 350)]), at(0), None).await.unwrap();
    assert_eq!(s.wallet(c, at(0)).await.unwrap().unwrap().balances.available, p(0));
    s.set_program(PROGRAM.into(), at(0), None).await.unwrap();
    for _ in 0..5 {
        s.record_order(order("o1", c, vec![eur_line("BEANS", 2, 1000)]), at(1), None).await.unwrap();
    }
    // 20.00 EUR at 1 point per EUR; not the first purchase, so no welcome bonus.
    assert_eq!(s.wallet(c, at(1)).await.unwrap().unwrap().balances.available, p(20));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.record_order(order("o2", c, vec![eur_line("BEANS", 1, 1000)]), at(2), None).await.unwrap().1
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.unwrap());
    }
    assert_eq!(created, 1);
    let wallet = s.wallet(c, at(2)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.lots.len()), (p(30), 2), "each order earned once");
    // A new customer's first order earns the welcome bonus too.
    let d = customer(s, "d1").await;
    s.record_order(order("o3", d, vec![eur_line("LATTE", 2, 350)]), at(2), None).await.unwrap();
    assert_eq!(s.wallet(d, at(2)).await.unwrap().unwrap().balances.available, p(17));
    assert_verified(s).await;
}

async fn a_refund_in_three_steps_takes_back_what_was_earned_and_no_more(db: &TestDb) {
    let s = &db.store;
    let c = customer(s, "c1").await;
    s.set_program(PROGRAM.replace("welcome_bonus = 10", "welcome_bonus = 0"), at(0), None).await.unwrap();
    // 3 x 33.33 EUR = 99.99 EUR: 99 points.
    let (o, _) = s.record_order(order("o1", c, vec![eur_line("BOX", 3, 3333)]), at(0), None).await.unwrap();
    assert_eq!(s.wallet(c, at(0)).await.unwrap().unwrap().balances.available, p(99));
    let refund = |n: u32| RefundDraft {
        external_id: Some(ExternalId::parse("external_id", &format!("r{n}")).unwrap()),
        order_id: o.id,
        refunded_at: at(1),
        reason: None,
        kind: RefundDraftKind::Lines(vec![RefundLine { line: 0, quantity: 1, amount_minor: 0 }]),
    };
    let mut left = Vec::new();
    for n in 1..=3 {
        s.record_refund(refund(n), at(1), None).await.unwrap();
        // A retried refund takes nothing more.
        s.record_refund(refund(n), at(1), None).await.unwrap();
        left.push(s.wallet(c, at(1)).await.unwrap().unwrap().balances.available.get());
    }
    assert_eq!(left, [66, 33, 0], "floor(99 x 1/3) = 33, floor(99 x 2/3) = 66, then all 99");
    let history = s.wallet_history(c).await.unwrap().unwrap();
    let figures = history.state.orders[&o.id];
    assert_eq!((figures.earned, figures.clawed_back), (p(99), p(99)));
    // Points already spent become a debt, repaid by the next points.
    let (o2, _) = s.record_order(order("o2", c, vec![eur_line("BOX", 1, 5000)]), at(2), None).await.unwrap();
    run(s, c, "spend", redeem(40), at(2)).await;
    s.record_refund(RefundDraft { order_id: o2.id, kind: RefundDraftKind::Whole, ..refund(4) }, at(3), None)
        .await
        .unwrap();
    let wallet = s.wallet(c, at(3)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.balances.owed()), (p(0), p(40)));
    run(s, c, "gift", adjust(25), at(4)).await;
    let wallet = s.wallet(c, at(4)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.balances.owed()), (p(0), p(15)));
    // A clawback request on its own: never more than earned in total.
    let over = Command::Clawback(Clawback {
        order: OrderRef { id: o.id, number: "o1".into() },
        refund: regulars_core::RefundId::from_key(999),
        order_net_minor: 9999,
        refunded_total_minor: 99_999,
        shortfall: Shortfall::Debt,
    });
    assert_eq!(run(s, c, "again", over, at(5)).await.receipt.points, p(0));
    assert_verified(s).await;
}

async fn time_matures_points_expires_lots_and_releases_holds(db: &TestDb) {
    let s = &db.store;
    let c = customer(s, "c1").await;
    run(s, c, "pending", award(40, at(0), 24, None), at(0)).await;
    run(s, c, "expiring", award(10, at(0), 0, Some(48)), at(0)).await;
    let wallet = s.wallet(c, at(1)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.balances.pending), (p(10), p(40)));
    assert!(matches!(refused(s, c, "r1", redeem(11), at(1)).await, Refusal::InsufficientPoints { .. }));
    // A day later the pending points are available: seen by a read, and by a write.
    let wallet = s.wallet(c, at(24)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.balances.pending), (p(50), p(0)));
    let hold = run(s, c, "h1", Command::PlaceHold { points: p(45), expires_at: at(30) }, at(25)).await;
    assert_eq!(hold.balances.available, p(5));
    // The hold times out at hour 30 and its points go back; at hour 48 the expiring lot's 10 expire.
    let wallet = s.wallet(c, at(31)).await.unwrap().unwrap();
    assert_eq!((wallet.balances.available, wallet.balances.held), (p(50), p(0)));
    assert_eq!(
        refused(s, c, "h1-capture", Command::Capture { hold: hold.receipt.hold.unwrap(), points: None }, at(31)).await,
        Refusal::HoldExpired
    );
    assert_eq!(s.ledger_settle(c, at(49)).await.unwrap(), 1, "the expiring lot's 10 points");
    assert_eq!(s.ledger_settle(c, at(50)).await.unwrap(), 0, "settling twice changes nothing");
    let wallet = s.wallet(c, at(50)).await.unwrap().unwrap();
    assert_eq!(wallet.balances.available, p(40));
    let text: Vec<String> = s.statement(c, at(50)).await.unwrap().unwrap().iter().map(ToString::to_string).collect();
    assert!(text.contains(&"-10: expired".to_owned()), "{text:?}");
    // The release is made by time, one line per lot it returns to.
    assert!(text.contains(&"35: hold 1 expired, back to available".to_owned()), "{text:?}");
    assert_verified(s).await;
}

async fn ledger_rows_are_append_only(db: &TestDb) {
    let s = &db.store;
    let c = customer(s, "c1").await;
    run(s, c, "a1", adjust(10), at(0)).await;
    // Only a raw connection could try; the database refuses.
    let refused = if db.url.starts_with("sqlite") {
        let conn = rusqlite::Connection::open(db.url.trim_start_matches("sqlite://")).unwrap();
        conn.execute("UPDATE loyalty_postings SET points = 1000", []).is_err()
            && conn.execute("DELETE FROM loyalty_lots", []).is_err()
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE loyalty_postings SET points = 1000").execute(&mut conn).await.is_err()
            && sqlx::query("DELETE FROM loyalty_requests").execute(&mut conn).await.is_err()
    };
    assert!(refused, "postings, lots and requests cannot be changed or deleted");
    assert_verified(s).await;
}

async fn coupons_hold_their_limits_under_concurrency(db: &TestDb) {
    use regulars_store::{CouponBatchDraft, CouponOffer};
    let s = &db.store;
    let draft = |max_uses, per_customer| CouponBatchDraft {
        name: "Spring".into(),
        offer: CouponOffer::PercentOff(10),
        count: 1,
        max_uses,
        max_uses_per_customer: per_customer,
        valid_from: None,
        valid_until: Some(at(48)),
    };
    let five = s.create_coupons(draft(Some(5), None), at(0), None).await.unwrap().codes.remove(0);
    assert!(five.as_str().len() >= 16, "80 random bits: {}", five.as_str());
    let mut customers = Vec::new();
    for i in 0..50 {
        customers.push(customer(s, &format!("c{i}")).await);
    }
    let tasks: Vec<_> = customers
        .iter()
        .map(|&c| {
            let (s, code) = (s.clone(), five.clone());
            tokio::spawn(async move { s.redeem_coupon(code, c, at(1), None).await })
        })
        .collect();
    let (ok, exhausted) = tally(tasks, |r| *r == Refusal::CouponExhausted).await;
    assert_eq!((ok.len(), exhausted), (5, 45));
    let state = s.coupon(&five, None).await.unwrap().unwrap();
    assert_eq!((state.uses, state.refusal(at(1))), (5, Some(Refusal::CouponExhausted)));

    // Per-customer limit 1, the same customer at two tills at once: one succeeds.
    let once = s.create_coupons(draft(None, Some(1)), at(0), None).await.unwrap().codes.remove(0);
    let tills: Vec<_> = (0..2)
        .map(|_| {
            let (s, code, c) = (s.clone(), once.clone(), customers[0]);
            tokio::spawn(async move { s.redeem_coupon(code, c, at(1), None).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tills {
        results.push(t.await.unwrap().map_err(|e| e.to_string()));
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().any(|r| r.as_ref().is_err_and(|e| e.contains("as often as they may"))), "{results:?}");
    let other = s.redeem_coupon(once.clone(), customers[1], at(1), None).await.unwrap();
    assert_eq!((other.coupon.uses, other.coupon.customer_uses), (2, 1));
    assert_eq!(s.coupon(&once, Some(customers[0])).await.unwrap().unwrap().customer_uses, 1);
    // Expired, unknown.
    assert!(matches!(
        s.redeem_coupon(once.clone(), customers[2], at(48), None).await,
        Err(StoreError::Refused(Refusal::CouponExpired))
    ));
    let unknown = regulars_core::loyalty::coupons::CouponCode::parse("code", "NOSUCHCODE").unwrap();
    assert!(matches!(
        s.redeem_coupon(unknown, customers[2], at(1), None).await,
        Err(StoreError::Refused(Refusal::CouponNotFound))
    ));
}

async fn the_expiry_job_settles_every_wallet_where_something_is_due(db: &TestDb) {
    let s = &db.store;
    let (a, b, c) = (customer(s, "a").await, customer(s, "b").await, customer(s, "c").await);
    run(s, a, "expiring", award(10, at(0), 0, Some(24)), at(0)).await;
    run(s, b, "pending", award(20, at(0), 12, None), at(0)).await;
    run(s, c, "kept", award(30, at(0), 0, None), at(0)).await;
    run(s, c, "hold", Command::PlaceHold { points: p(5), expires_at: at(6) }, at(0)).await;
    assert_eq!(s.settle_due(at(1), 2).await.unwrap(), (0, 0), "nothing is due yet");
    // Hour 30: a's lot expired, b's matured, c's hold released; in batches of 2 wallets.
    assert_eq!(s.settle_due(at(30), 2).await.unwrap(), (3, 3));
    assert_eq!(s.settle_due(at(31), 2).await.unwrap(), (0, 0), "settling twice changes nothing");
    let stored = |customer| async move { s.wallet_history(customer).await.unwrap().unwrap().state.balances };
    let (wa, wb, wc) = (stored(a).await, stored(b).await, stored(c).await);
    assert_eq!((wa.available, wb.available, wb.pending, wc.available, wc.held), (p(0), p(20), p(0), p(30), p(0)));
    assert_verified(s).await;
}

async fn verify_is_clean_while_writes_go_on(db: &TestDb) {
    let s = &db.store;
    let mut wallets = Vec::new();
    for i in 0..4 {
        let c = customer(s, &format!("w{i}")).await;
        run(s, c, "opening", adjust(1_000), at(0)).await;
        wallets.push(c);
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (s, wallets) = (s.clone(), wallets.clone());
            tokio::spawn(async move {
                for i in 0..60 {
                    let c = wallets[(w + i) % wallets.len()];
                    let command = if i % 3 == 0 { award(7, at(1), 0, Some(2)) } else { redeem(3) };
                    let request = Request { id: id(&format!("w{w}-{i}")), command };
                    let _ = s.ledger_execute(c, request, at(1), None).await;
                }
            })
        })
        .collect();
    // Each wallet is read in one snapshot: its row, lots and postings always agree.
    while !writers.iter().all(|w| w.is_finished()) {
        assert_verified(s).await;
        for &c in &wallets {
            let view = s.wallet(c, at(1)).await.unwrap().unwrap();
            let in_lots: i64 = view.lots.iter().map(|l| l.remaining.get()).sum();
            assert_eq!(in_lots, view.balances.available.get() + view.balances.pending.get());
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_verified(s).await;
}

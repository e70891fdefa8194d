//! Rewards, punch cards and held coupon redemptions in the store, on SQLite and on PostgreSQL.

use chrono::{DateTime, Duration, TimeZone, Utc};
use regulars_core::loyalty::coupons::CouponCode;
use regulars_core::loyalty::rewards::{Reward, RewardKind};
use regulars_core::loyalty::{Command, Points, Refusal, Request, RequestId};
use regulars_core::order::CustomerRef;
use regulars_core::{
    Currency, CustomerDraft, CustomerId, ExternalId, OrderDraft, OrderLine, Quantity, RefundDraft, RefundDraftKind,
    RefundLine, Sku,
};
use regulars_store::{
    CouponBatchDraft, CouponOffer, CustomerFigures, RewardDelivery, Sale, SaleGrant, Store, StoreError,
};
use regulars_testkit::{TestDb, tally};

fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn request(raw: &str) -> RequestId {
    RequestId::parse("id", raw).unwrap()
}

async fn customer(s: &Store, external_id: &str) -> CustomerId {
    let draft = CustomerDraft {
        external_id: Some(ExternalId::parse("external_id", external_id).unwrap()),
        ..CustomerDraft::default()
    };
    s.create_customer(draft, at(0), None).await.unwrap().id
}

async fn give(s: &Store, customer: CustomerId, points: i64) {
    let command = Command::Adjust { points: Points::new(points), note: "opening balance".into(), expires_at: None };
    let id = request(&format!("give:{customer}:{points}"));
    s.ledger_execute(customer, Request { id, command }, at(0), None).await.unwrap();
}

async fn available(s: &Store, customer: CustomerId) -> i64 {
    s.wallet(customer, at(1)).await.unwrap().unwrap().balances.available.get()
}

fn reward(key: &str, cost: i64, stock: Option<u32>, limit: Option<u32>) -> Reward {
    Reward {
        key: key.into(),
        name: format!("Free {key}"),
        kind: RewardKind::FreeItem { sku: Sku::parse("sku", "ESP").unwrap() },
        cost: Points::new(cost),
        stock,
        per_customer_limit: limit,
        valid_from: Some(at(0)),
        valid_until: Some(at(100)),
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, StoreError>) -> Refusal {
    match r {
        Err(StoreError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

regulars_testkit::on_both_databases!(
    twenty_concurrent_redemptions_of_a_reward_with_stock_three_give_three,
    rewards_keep_the_per_customer_limit_and_refuse_without_writing,
    a_full_punch_card_issues_one_code_and_refunds_remove_stamps,
    a_held_coupon_counts_against_its_limit_until_released_or_expired,
    concurrent_orders_of_one_customer_stamp_one_card_in_turn,
    stamps_expire_when_the_program_says_so,
    sale_grants_check_the_tier_or_the_segment_of_the_latest_snapshot_when_written,
);

async fn twenty_concurrent_redemptions_of_a_reward_with_stock_three_give_three(db: &TestDb) {
    let s = &db.store;
    let stored = s.create_reward(reward("espresso", 100, Some(3), None), None, at(0), None).await.unwrap();
    let mut customers = Vec::new();
    for i in 0..20 {
        let c = customer(s, &format!("c{i}")).await;
        give(s, c, 250).await;
        customers.push(c);
    }
    let tasks: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let s = s.clone();
            tokio::spawn(async move {
                s.redeem_reward(stored.id, c, request(&format!("r{i}")), RewardDelivery::Code, at(1), None).await
            })
        })
        .collect();
    let (redeemed, out_of_stock) = tally(tasks, |r| *r == Refusal::RewardOutOfStock).await;
    let codes: Vec<_> = redeemed.into_iter().map(|r| r.code.expect("a code")).collect();
    assert_eq!((codes.len(), out_of_stock), (3, 17));
    let mut spent = 0;
    for &c in &customers {
        spent += 250 - available(s, c).await;
    }
    assert_eq!(spent, 300, "the points of exactly three");
    assert_eq!(s.reward(stored.id).await.unwrap().unwrap().issued, 3);
    // Each code is a single-use coupon the till redeems later, for the free item.
    let coupon = s.coupon(&codes[0], None).await.unwrap().unwrap();
    assert_eq!(coupon.max_uses, Some(1));
    assert_eq!(coupon.gift, Some(("Free espresso".to_owned(), Some("ESP".to_owned()))));
    assert!(codes[0].as_str().len() >= 16, "80 random bits");
    s.redeem_coupon(codes[0].clone(), customers[0], at(2), None).await.unwrap();
    assert_eq!(refusal(s.redeem_coupon(codes[0].clone(), customers[0], at(2), None).await), Refusal::CouponExhausted);
    assert_eq!(s.verify_loyalty().await.unwrap().findings, vec![]);
}

async fn rewards_keep_the_per_customer_limit_and_refuse_without_writing(db: &TestDb) {
    let s = &db.store;
    let eur = Currency::parse("currency", "EUR").unwrap();
    let mut five_off = reward("five-off", 100, None, Some(2));
    five_off.kind = RewardKind::AmountOff { minor: 500 };
    let stored = s.create_reward(five_off.clone(), Some(eur), at(0), None).await.unwrap();
    assert!(matches!(
        s.create_reward(five_off, Some(eur), at(0), None).await,
        Err(StoreError::AlreadyExists { ref field, .. }) if field == "key"
    ));
    let rich = customer(s, "rich").await;
    give(s, rich, 1000).await;
    for i in 0..2 {
        let r = s.redeem_reward(stored.id, rich, request(&format!("a{i}")), RewardDelivery::Offer, at(1), None);
        let r = r.await.unwrap();
        assert_eq!((r.code, r.customer_uses), (None, i + 1));
    }
    let third = s.redeem_reward(stored.id, rich, request("a2"), RewardDelivery::Code, at(1), None).await;
    assert_eq!(refusal(third), Refusal::RewardLimitPerCustomer);
    assert_eq!(available(s, rich).await, 800, "two rewards paid, the refused one not");

    // The same customer at ten tills at once, on a reward with a limit of 2: exactly two.
    let twice = s.create_reward(reward("twice", 10, None, Some(2)), None, at(0), None).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.redeem_reward(twice.id, rich, request(&format!("t{i}")), RewardDelivery::Code, at(1), None).await
            })
        })
        .collect();
    let (ok, limited) = tally(tasks, |r| *r == Refusal::RewardLimitPerCustomer).await;
    assert_eq!((ok.len(), limited), (2, 8));
    assert_eq!(available(s, rich).await, 780);

    let poor = customer(s, "poor").await;
    give(s, poor, 99).await;
    let r = s.redeem_reward(stored.id, poor, request("p1"), RewardDelivery::Code, at(1), None).await;
    assert_eq!(refusal(r).code(), "insufficient_points");
    assert_eq!(s.reward(stored.id).await.unwrap().unwrap().issued, 2, "the refused redemption took no stock");
    let late = s.redeem_reward(stored.id, rich, request("late"), RewardDelivery::Code, at(100), None).await;
    assert_eq!(refusal(late), Refusal::RewardNotActive);
    let early = s.redeem_reward(stored.id, poor, request("early"), RewardDelivery::Code, at(-1), None).await;
    assert_eq!(refusal(early).code(), "reward_not_active");
    assert_eq!(available(s, poor).await, 99);
    assert_eq!(s.verify_loyalty().await.unwrap().findings, vec![]);
}

const PUNCH_PROGRAM: &str = r#"
name = "Coffee club"
currency = "EUR"
lock_days = 0

[earning]
points_per_unit = 1

[[punch_cards]]
name = "Espresso"
stamps = 10
sku = "ESP"
reward = "a free espresso"
reward_sku = "ESP"
"#;

fn order(external_id: &str, customer: CustomerId, lines: &[(&str, i64)]) -> OrderDraft {
    priced_order(external_id, customer, lines, 250)
}

fn priced_order(external_id: &str, customer: CustomerId, lines: &[(&str, i64)], unit: i64) -> OrderDraft {
    let lines = lines
        .iter()
        .map(|(sku, q)| {
            OrderLine::new(Sku::parse("sku", sku).unwrap(), None, Quantity::new("quantity", *q).unwrap(), unit, 0)
                .unwrap()
        })
        .collect();
    OrderDraft::new(
        Some(ExternalId::parse("external_id", external_id).unwrap()),
        CustomerRef::Id(customer),
        at(0),
        Currency::parse("currency", "EUR").unwrap(),
        lines,
    )
    .unwrap()
}

async fn espresso_card(s: &Store, c: CustomerId) -> regulars_store::PunchCardView {
    s.punch_cards(c, at(1)).await.unwrap().unwrap().remove(0)
}

async fn a_full_punch_card_issues_one_code_and_refunds_remove_stamps(db: &TestDb) {
    let s = &db.store;
    s.set_program(PUNCH_PROGRAM.into(), at(0), None).await.unwrap();
    let c = customer(s, "c1").await;
    for i in 0..9 {
        // Every order recorded twice: a replay stamps nothing.
        for _ in 0..2 {
            s.record_order(order(&format!("o{i}"), c, &[("ESP", 1), ("TEA", 3)]), at(1), None).await.unwrap();
        }
    }
    let card = espresso_card(s, c).await;
    assert_eq!((card.live_stamps, card.completed, card.codes.len()), (9, 0, 0));
    // The tenth espresso, recorded concurrently five times, completes the card once.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.record_order(order("o9", c, &[("ESP", 1)]), at(1), None).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let card = espresso_card(s, c).await;
    assert_eq!((card.live_stamps, card.completed, card.codes.len()), (0, 1, 1));
    let coupon = s.coupon(&card.codes[0], None).await.unwrap().unwrap();
    assert_eq!((coupon.max_uses, coupon.gift.clone()), (Some(1), Some(("a free espresso".into(), Some("ESP".into())))));

    // Three more, then a refund of two of them removes two stamps.
    let (o, _) = s.record_order(order("o10", c, &[("ESP", 3)]), at(1), None).await.unwrap();
    assert_eq!(espresso_card(s, c).await.live_stamps, 3);
    let refund = RefundDraft {
        external_id: Some(ExternalId::parse("external_id", "r1").unwrap()),
        order_id: o.id,
        refunded_at: at(1),
        reason: None,
        kind: RefundDraftKind::Lines(vec![RefundLine { line: 0, quantity: 2, amount_minor: 0 }]),
    };
    s.record_refund(refund.clone(), at(1), None).await.unwrap();
    s.record_refund(refund, at(1), None).await.unwrap();
    let card = espresso_card(s, c).await;
    assert_eq!((card.live_stamps, card.completed), (1, 1), "the refund removed two stamps, once");
}

async fn a_held_coupon_counts_against_its_limit_until_released_or_expired(db: &TestDb) {
    let s = &db.store;
    let draft = CouponBatchDraft {
        name: "Once".into(),
        offer: CouponOffer::PercentOff(10),
        count: 1,
        max_uses: Some(1),
        max_uses_per_customer: None,
        valid_from: None,
        valid_until: None,
    };
    let code: CouponCode = s.create_coupons(draft, at(0), None).await.unwrap().codes.remove(0);
    let (a, b) = (customer(s, "a").await, customer(s, "b").await);
    let ttl = |now: DateTime<Utc>| now + Duration::minutes(10);
    let hold_a = s.hold_coupon(code.clone(), a, ttl(at(0)), at(0), None).await.unwrap();
    assert_eq!(refusal(s.hold_coupon(code.clone(), b, ttl(at(0)), at(0), None).await), Refusal::CouponExhausted);
    assert_eq!(refusal(s.redeem_coupon(code.clone(), b, at(0), None).await), Refusal::CouponExhausted);
    // Released: till B may hold it now.
    assert_eq!(s.resolve_coupon_hold(hold_a.id, false, at(0), None).await.unwrap().status, "released");
    let again = s.resolve_coupon_hold(hold_a.id, true, at(0), None).await;
    assert_eq!(refusal(again), Refusal::CouponHoldAlreadyResolved);
    let hold_b = s.hold_coupon(code.clone(), b, ttl(at(0)), at(0), None).await.unwrap();
    // B's hold expires: A may hold it again, and B's confirmation is refused.
    let later = at(0) + Duration::minutes(10);
    assert_eq!(s.coupon_hold(hold_b.id, later).await.unwrap().unwrap().status, "expired");
    let hold_a2 = s.hold_coupon(code.clone(), a, ttl(later), later, None).await.unwrap();
    assert_eq!(refusal(s.resolve_coupon_hold(hold_b.id, true, later, None).await), Refusal::CouponHoldExpired);
    let confirmed = s.resolve_coupon_hold(hold_a2.id, true, later, None).await.unwrap();
    assert_eq!(confirmed.status, "confirmed");
    assert!(confirmed.redemption_id.is_some());
    let state = s.coupon(&code, Some(a)).await.unwrap().unwrap();
    assert_eq!((state.uses, state.customer_uses), (1, 1));
    let much_later = later + Duration::days(1);
    assert_eq!(
        refusal(s.hold_coupon(code.clone(), b, ttl(much_later), much_later, None).await),
        Refusal::CouponExhausted
    );

    // Concurrent holds of a 3-use coupon: exactly 3.
    let draft = CouponBatchDraft {
        name: "Three".into(),
        offer: CouponOffer::PercentOff(10),
        count: 1,
        max_uses: Some(3),
        max_uses_per_customer: None,
        valid_from: None,
        valid_until: None,
    };
    let three = s.create_coupons(draft, at(0), None).await.unwrap().codes.remove(0);
    let mut customers = Vec::new();
    for i in 0..12 {
        customers.push(customer(s, &format!("t{i}")).await);
    }
    let tasks: Vec<_> = customers
        .iter()
        .map(|&c| {
            let (s, code) = (s.clone(), three.clone());
            tokio::spawn(async move { s.hold_coupon(code, c, ttl(at(1)), at(1), None).await })
        })
        .collect();
    let mut held = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => held += 1,
            Err(StoreError::Refused(Refusal::CouponExhausted)) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(held, 3);
}

async fn concurrent_orders_of_one_customer_stamp_one_card_in_turn(db: &TestDb) {
    let s = &db.store;
    s.set_program(PUNCH_PROGRAM.into(), at(0), None).await.unwrap();
    let c = customer(s, "c1").await;
    // Orders of 0.50 EUR earn no points, so only the punch cards touch the customer's loyalty rows.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.record_order(priced_order(&format!("o{i}"), c, &[("ESP", 1)], 50), at(1), None).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let card = espresso_card(s, c).await;
    assert_eq!((card.live_stamps, card.completed, card.codes.len()), (2, 1, 1));
    assert_eq!(available(s, c).await, 0);
}

async fn stamps_expire_when_the_program_says_so(db: &TestDb) {
    let s = &db.store;
    let program = PUNCH_PROGRAM.replace("reward_sku = \"ESP\"", "reward_sku = \"ESP\"\nstamp_expiry_days = 30");
    s.set_program(program, at(0), None).await.unwrap();
    let c = customer(s, "c1").await;
    s.record_order(order("o1", c, &[("ESP", 9)]), at(0), None).await.unwrap();
    let day = |d: i64| at(0) + Duration::days(d);
    let live = |d: i64| async move { s.punch_cards(c, day(d)).await.unwrap().unwrap().remove(0).live_stamps };
    assert_eq!(live(29).await, 9);
    assert_eq!(live(30).await, 0, "stamped on day 0, expired on day 30");
    // One more on day 30 does not complete the card: the nine are gone.
    s.record_order(order("o2", c, &[("ESP", 1)]), day(30), None).await.unwrap();
    let card = s.punch_cards(c, day(30)).await.unwrap().unwrap().remove(0);
    assert_eq!((card.live_stamps, card.completed), (1, 0));
    s.record_order(order("o3", c, &[("ESP", 9)]), day(31), None).await.unwrap();
    let card = s.punch_cards(c, day(31)).await.unwrap().unwrap().remove(0);
    assert_eq!((card.live_stamps, card.completed, card.codes.len()), (0, 1, 1));
}

fn in_segment(customer: CustomerId, segment: &str) -> CustomerFigures {
    CustomerFigures {
        customer_id: customer,
        frequency: 4,
        total_spend_minor: 9000,
        last_purchase: chrono::NaiveDate::from_ymd_opt(2026, 2, 27).unwrap(),
        probability_alive: Some(0.9),
        expected_purchases: Some(2.0),
        expected_value: None,
        clv: None,
        segment: segment.into(),
        rfm: "555".into(),
        median_gap_days: Some(7.0),
        overdue: false,
        value_at_risk: 900.0,
    }
}

async fn save_segments(s: &Store, hours: i64, figures: Vec<CustomerFigures>) {
    s.save_snapshot(at(hours), at(hours).date_naive(), "{}".into(), figures).await.unwrap();
}

async fn sale_grants_check_the_tier_or_the_segment_of_the_latest_snapshot_when_written(db: &TestDb) {
    let s = &db.store;
    let draft = |tiers: &[&str], segments: &[&str]| Sale {
        id: 0,
        name: "Preview".into(),
        starts_at: at(48),
        ends_at: at(96),
        early_access_from: at(24),
        tiers: tiers.iter().map(|t| (*t).to_owned()).collect(),
        segments: segments.iter().map(|t| (*t).to_owned()).collect(),
    };
    assert!(s.create_sale(draft(&[], &[]), at(0), None).await.is_err(), "the table refuses a sale for nobody");
    let champions = s.create_sale(draft(&[], &["champions"]), at(0), None).await.unwrap();
    assert_eq!(s.sale(champions.id).await.unwrap().unwrap().segments, ["champions"]);
    let gold_or_loyal = s.create_sale(draft(&["gold"], &["loyal"]), at(0), None).await.unwrap();
    let (a, b) = (customer(s, "a").await, customer(s, "b").await);
    let grant = |sale: &Sale, c: CustomerId| s.grant_sale_access(sale.clone(), c, at(1), None);
    assert_eq!(refusal(grant(&champions, a).await), Refusal::SaleNotForTier, "no snapshot yet");
    save_segments(s, 1, vec![in_segment(a, "champions"), in_segment(b, "loyal")]).await;
    let given = grant(&champions, a).await.unwrap();
    assert_eq!((given.tier, given.segment.as_deref()), (None, Some("champions")));
    assert_eq!(refusal(grant(&champions, b).await), Refusal::SaleNotForTier);
    let SaleGrant { segment, .. } = grant(&gold_or_loyal, b).await.unwrap();
    assert_eq!(segment.as_deref(), Some("loyal"));
    // The statement reads the latest snapshot: one moving `a` out refuses the sale as it was read before.
    save_segments(s, 2, vec![in_segment(a, "need_attention"), in_segment(b, "champions")]).await;
    assert_eq!(refusal(grant(&champions, a).await), Refusal::SaleNotForTier);
    assert_eq!(refusal(grant(&gold_or_loyal, b).await), Refusal::SaleNotForTier, "b is no longer loyal");
    assert_eq!(grant(&champions, b).await.unwrap().segment.as_deref(), Some("champions"));
}

//! Rewards, punch cards, held coupons, checkout pricing and VIP early access through the API, on SQLite
//! and on PostgreSQL, with the test clock.

use chrono::Duration;
use regulars_core::Role;
use regulars_testkit::TestApp;
use serde_json::{Value, json};

async fn customer(app: &TestApp, external_id: &str) -> String {
    let (status, body) = app.call("POST", "/api/v1/customers", Some(json!({"external_id": external_id}))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn adjust(app: &TestApp, customer: &str, points: i64) {
    let path = format!("/api/v1/customers/{customer}/wallet/adjust");
    let (status, body) = app.call("POST", &path, Some(json!({"points": points, "reason": "opening balance"}))).await;
    assert_eq!(status, 200, "{body}");
}

async fn available(app: &TestApp, customer: &str) -> i64 {
    let (status, body) = app.call("GET", &format!("/api/v1/customers/{customer}/wallet"), None).await;
    assert_eq!(status, 200, "{body}");
    body["available"].as_i64().unwrap()
}

/// Sets a customer's tier in the database, as the tier job of the other branch will.
async fn set_tier(app: &TestApp, customer: &str, tier: &str) {
    let key: i64 = customer.strip_prefix("cus_").unwrap().parse().unwrap();
    let sql = format!(
        "INSERT INTO loyalty_wallets (customer_id, tier) VALUES ({key}, '{tier}') \
         ON CONFLICT (customer_id) DO UPDATE SET tier = '{tier}'"
    );
    if let Some(path) = app.db.url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path).unwrap().execute(&sql, []).unwrap();
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
}

/// Saves an analytics snapshot placing each customer in a segment, as the snapshot job would.
async fn set_segments(app: &TestApp, segments: &[(&str, &str)]) {
    let figures = segments
        .iter()
        .map(|&(customer, segment)| regulars_store::CustomerFigures {
            customer_id: customer.parse().unwrap(),
            frequency: 4,
            total_spend_minor: 9000,
            last_purchase: chrono::NaiveDate::from_ymd_opt(2026, 5, 30).unwrap(),
            probability_alive: Some(0.9),
            expected_purchases: Some(2.0),
            expected_value: Some(2250.0),
            clv: Some(4500.0),
            segment: segment.into(),
            rfm: "555".into(),
            median_gap_days: Some(7.0),
            overdue: false,
            value_at_risk: 900.0,
        })
        .collect();
    let now = regulars_testkit::test_now();
    app.db.store.save_snapshot(now, now.date_naive(), "{}".into(), figures).await.unwrap();
}

fn code_of(body: &Value) -> Option<&str> {
    body["code"].as_str()
}

regulars_testkit::on_both_servers!(
    rewards_are_defined_redeemed_and_refused_with_stable_codes,
    twenty_concurrent_redemptions_over_the_api_give_the_stock,
    punch_cards_fill_from_orders_once_and_refunds_remove_stamps,
    a_held_coupon_blocks_other_tills_until_released_or_expired,
    carts_are_priced_with_promotions_tiers_and_coupons,
    vip_tokens_are_signed_checked_and_refused,
    vip_tokens_go_to_the_segments_of_the_latest_snapshot,
);

async fn rewards_are_defined_redeemed_and_refused_with_stable_codes(app: &TestApp) {
    let till = app.key(Role::Cashier).await;
    let reward = json!({
        "key": "croissant", "name": "Free croissant", "free_item": "CROISSANT", "cost": 150,
        "stock": 10, "per_customer_limit": 2, "valid_until": "2026-12-31T00:00:00Z",
    });
    let (status, body) = app.call_as(&till, "POST", "/api/v1/rewards", Some(reward.clone()), None).await;
    assert_eq!(status, 403, "only the owner defines rewards: {body}");
    let mut bad = reward.clone();
    bad["percent_off"] = json!(10);
    let (status, body) = app.call("POST", "/api/v1/rewards", Some(bad)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("free_item")), "{body}");
    let (status, body) =
        app.call("POST", "/api/v1/rewards", Some(json!({"key": "x", "name": "x", "percent_off": 10, "cost": 0}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("cost")), "{body}");
    assert_eq!(
        app.call("GET", "/api/v1/rewards", None).await.1["items"],
        json!([]),
        "refused definitions wrote nothing"
    );
    let (status, created) = app.call("POST", "/api/v1/rewards", Some(reward.clone())).await;
    assert_eq!(
        (status, &created["remaining"], &created["offer"]),
        (201, &json!(10), &json!({"free_item": "CROISSANT"})),
        "{created}"
    );
    let (status, body) = app.call("POST", "/api/v1/rewards", Some(reward)).await;
    assert_eq!((status, code_of(&body), body["field"].as_str()), (409, Some("already_exists"), Some("key")));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rwd_"));

    let c = customer(app, "c1").await;
    adjust(app, &c, 400).await;
    let redeem = format!("/api/v1/rewards/{id}/redeem");
    let (status, first) = app.call_as(&till, "POST", &redeem, Some(json!({"customer_id": c})), Some("r-1")).await;
    assert_eq!((status, &first["points"], &first["available"]), (200, &json!(150), &json!(250)), "{first}");
    // A replay returns the same code and spends nothing more.
    let (status, replay) = app.call_as(&till, "POST", &redeem, Some(json!({"customer_id": c})), Some("r-1")).await;
    assert_eq!((status, &replay), (200, &first));
    assert_eq!(available(app, &c).await, 250);
    // The code is a single-use coupon the till redeems later.
    let code = first["code"].as_str().unwrap();
    assert!(code.len() >= 13, "at least 64 random bits: {code}");
    let (status, check) = app.call("GET", &format!("/api/v1/coupons/{code}"), None).await;
    assert_eq!((status, &check["valid"], &check["max_uses"]), (200, &json!(true), &json!(1)), "{check}");
    // At the till, the code makes one croissant free.
    let cart = json!({"customer_id": c, "currency": "EUR", "coupons": [code], "lines": [
        {"sku": "CROISSANT", "quantity": 2, "unit_price_minor": 250}, {"sku": "LATTE", "quantity": 1, "unit_price_minor": 350}]});
    let (status, priced) = app.call_as(&till, "POST", "/api/v1/checkout/price", Some(cart), None).await;
    assert_eq!(
        (status, &priced["total_minor"], &priced["lines"][0]["discount_minor"]),
        (200, &json!(600), &json!(250)),
        "{priced}"
    );
    assert_eq!(priced["coupons"][0]["gift"], json!("Free croissant"));
    let path = format!("/api/v1/coupons/{code}/redeem");
    assert_eq!(app.call_as(&till, "POST", &path, Some(json!({"customer_id": c})), None).await.0, 200);
    let (status, body) = app.call_as(&till, "POST", &path, Some(json!({"customer_id": c})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("coupon_exhausted")));

    // The offer instead of a code; then the per-customer limit.
    let (status, offer) =
        app.call_as(&till, "POST", &redeem, Some(json!({"customer_id": c, "delivery": "offer"})), None).await;
    assert_eq!((status, &offer["code"], &offer["offer"]["free_item"]), (200, &Value::Null, &json!("CROISSANT")));
    let (status, body) = app.call_as(&till, "POST", &redeem, Some(json!({"customer_id": c})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("reward_limit_per_customer")), "{body}");
    let poor = customer(app, "poor").await;
    let (status, body) = app.call_as(&till, "POST", &redeem, Some(json!({"customer_id": poor})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("insufficient_points")), "{body}");
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-12-31T00:00:00Z").unwrap().to_utc());
    let (status, body) = app.call_as(&till, "POST", &redeem, Some(json!({"customer_id": poor})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("reward_not_active")), "{body}");
    let (_, list) = app.call("GET", "/api/v1/rewards", None).await;
    assert_eq!((&list["items"][0]["issued"], &list["items"][0]["remaining"]), (&json!(2), &json!(8)));
    let (status, body) =
        app.call_as(&till, "POST", "/api/v1/rewards/rwd_999/redeem", Some(json!({"customer_id": c})), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(app.db.store.verify_loyalty().await.unwrap().findings, vec![]);
}

async fn twenty_concurrent_redemptions_over_the_api_give_the_stock(app: &TestApp) {
    let reward = json!({"key": "mug", "name": "A mug", "free_item": "MUG", "cost": 100, "stock": 3});
    let (_, created) = app.call("POST", "/api/v1/rewards", Some(reward)).await;
    let redeem = format!("/api/v1/rewards/{}/redeem", created["id"].as_str().unwrap());
    let c = customer(app, "hot").await;
    adjust(app, &c, 5000).await;
    let till = app.key(Role::Integration).await;
    let url = app.url(&redeem);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (client, url, key, c) = (app.client.clone(), url.clone(), till.clone(), c.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(key)
                    .header("idempotency-key", format!("till-{i}"))
                    .json(&json!({"customer_id": c}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let out = results.iter().filter(|(s, b)| *s == 409 && code_of(b) == Some("reward_out_of_stock")).count();
    assert_eq!((ok, out), (3, 17), "{results:?}");
    assert_eq!(available(app, &c).await, 5000 - 300, "the points of exactly three");
    assert_eq!(app.db.store.verify_loyalty().await.unwrap().findings, vec![]);
}

const PUNCH_PROGRAM: &str = r#"
name = "Coffee club"
currency = "EUR"

[earning]
points_per_unit = 1

[[punch_cards]]
name = "Coffee"
stamps = 10
category = "coffee"
reward = "a free coffee"
reward_sku = "LATTE"
"#;

async fn punch_cards_fill_from_orders_once_and_refunds_remove_stamps(app: &TestApp) {
    let (status, body) =
        app.raw(&app.owner_key, "PUT", "/api/v1/loyalty/program", Some(PUNCH_PROGRAM.to_owned()), None).await;
    assert_eq!(status, 200, "{body}");
    for sku in ["LATTE", "FLAT"] {
        let product = json!({"sku": sku, "name": sku, "category": "coffee"});
        assert_eq!(app.call("POST", "/api/v1/products", Some(product)).await.0, 200);
    }
    let c = customer(app, "c1").await;
    let till = app.key(Role::Cashier).await;
    let order = |n: u32, sku: &str, quantity: u32| {
        json!({
            "external_id": format!("pos-{n}"), "customer_id": c, "placed_at": "2026-05-30T08:00:00Z", "currency": "EUR",
            "lines": [{"sku": sku, "quantity": quantity, "unit_price_minor": 300}, {"sku": "BUN", "quantity": 1, "unit_price_minor": 200}],
        })
    };
    let cards = format!("/api/v1/customers/{c}/punch-cards");
    for n in 0..9 {
        let sku = if n % 2 == 0 { "LATTE" } else { "FLAT" };
        let (status, body) = app.call_as(&till, "POST", "/api/v1/orders", Some(order(n, sku, 1)), None).await;
        assert_eq!(status, 201, "{body}");
        // The same order again (a retry without an idempotency key) stamps nothing.
        let (status, _) = app.call_as(&till, "POST", "/api/v1/orders", Some(order(n, sku, 1)), None).await;
        assert_eq!(status, 200);
    }
    let (_, body) = app.call("GET", &cards, None).await;
    assert_eq!((&body["items"][0]["stamps"], &body["items"][0]["codes"]), (&json!(9), &json!([])), "{body}");
    // The tenth completes the card: one code.
    app.call_as(&till, "POST", "/api/v1/orders", Some(order(9, "LATTE", 1)), None).await;
    let (_, body) = app.call("GET", &cards, None).await;
    let card = &body["items"][0];
    assert_eq!(
        (&card["stamps"], &card["completed"], card["codes"].as_array().unwrap().len()),
        (&json!(0), &json!(1), 1),
        "{body}"
    );
    let code = card["codes"][0].as_str().unwrap();
    let (_, check) = app.call("GET", &format!("/api/v1/coupons/{code}"), None).await;
    assert_eq!((&check["valid"], &check["max_uses"]), (&json!(true), &json!(1)), "{check}");
    // Three more, two returned: one stamp left.
    let (_, o) = app.call_as(&till, "POST", "/api/v1/orders", Some(order(10, "FLAT", 3)), None).await;
    let refund = json!({"external_id": "ret-1", "lines": [{"line": 0, "quantity": 2}]});
    let path = format!("/api/v1/orders/{}/refunds", o["id"].as_str().unwrap());
    let (status, body) = app.call_as(&till, "POST", &path, Some(refund.clone()), None).await;
    assert_eq!(status, 201, "{body}");
    app.call_as(&till, "POST", &path, Some(refund), None).await;
    let (_, body) = app.call("GET", &cards, None).await;
    assert_eq!((&body["items"][0]["stamps"], &body["items"][0]["completed"]), (&json!(1), &json!(1)), "{body}");
    assert_eq!(app.call("GET", "/api/v1/customers/cus_999999/punch-cards", None).await.0, 404);
}

async fn a_held_coupon_blocks_other_tills_until_released_or_expired(app: &TestApp) {
    let batch = json!({"name": "Welcome", "count": 1, "percent_off": 10, "max_uses": 1});
    let (_, created) = app.call("POST", "/api/v1/coupons", Some(batch)).await;
    let code = created["codes"][0].as_str().unwrap().to_owned();
    let (a, b) = (customer(app, "a").await, customer(app, "b").await);
    let (till_a, till_b) = (app.key(Role::Cashier).await, app.key(Role::Integration).await);
    let holds = format!("/api/v1/coupons/{code}/holds");
    let (status, body) =
        app.call_as(&till_a, "POST", &holds, Some(json!({"customer_id": a, "ttl_seconds": 0})), None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("ttl_seconds")));
    let (status, hold_a) =
        app.call_as(&till_a, "POST", &holds, Some(json!({"customer_id": a, "ttl_seconds": 300})), Some("h-a")).await;
    assert_eq!((status, &hold_a["status"]), (201, &json!("open")), "{hold_a}");
    let hold_a = hold_a["id"].as_str().unwrap().to_owned();
    assert!(hold_a.starts_with("chl_"));
    let (status, body) =
        app.call_as(&till_b, "POST", &holds, Some(json!({"customer_id": b, "ttl_seconds": 300})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("coupon_exhausted")), "{body}");
    let redeem = format!("/api/v1/coupons/{code}/redeem");
    let (status, body) = app.call_as(&till_b, "POST", &redeem, Some(json!({"customer_id": b})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("coupon_exhausted")), "a direct redemption is blocked too");
    // Validation and pricing say so too, except to the customer whose checkout holds it.
    let (_, check) = app.call("GET", &format!("/api/v1/coupons/{code}?customer_id={b}"), None).await;
    assert_eq!(
        (&check["valid"], &check["refusal"], &check["uses"]),
        (&json!(false), &json!("coupon_exhausted"), &json!(0))
    );
    let (_, check) = app.call("GET", &format!("/api/v1/coupons/{code}?customer_id={a}"), None).await;
    assert_eq!(check["valid"], json!(true), "{check}");
    let cart = |c: &str| json!({"customer_id": c, "currency": "EUR", "coupons": [code], "lines": [{"sku": "X", "quantity": 1, "unit_price_minor": 1000}]});
    let (_, priced) = app.call("POST", "/api/v1/checkout/price", Some(cart(&a))).await;
    assert_eq!(priced["total_minor"], json!(900), "{priced}");
    let (_, priced) = app.call("POST", "/api/v1/checkout/price", Some(cart(&b))).await;
    assert_eq!((&priced["total_minor"], &priced["coupons"][0]["refusal"]), (&json!(1000), &json!("coupon_exhausted")));
    // A's hold expires: B may hold it; A's confirmation is refused.
    app.clock.advance(Duration::seconds(300));
    let (status, hold_b) =
        app.call_as(&till_b, "POST", &holds, Some(json!({"customer_id": b, "ttl_seconds": 60})), None).await;
    assert_eq!(status, 201, "{hold_b}");
    let hold_b = hold_b["id"].as_str().unwrap().to_owned();
    let (status, body) =
        app.call_as(&till_a, "POST", &format!("/api/v1/coupon-holds/{hold_a}/confirm"), None, None).await;
    assert_eq!((status, code_of(&body)), (409, Some("coupon_hold_expired")), "{body}");
    // B releases; A holds again and confirms.
    let (status, body) =
        app.call_as(&till_b, "POST", &format!("/api/v1/coupon-holds/{hold_b}/release"), None, None).await;
    assert_eq!((status, &body["status"]), (200, &json!("released")), "{body}");
    let (_, again) =
        app.call_as(&till_a, "POST", &holds, Some(json!({"customer_id": a, "ttl_seconds": 60})), None).await;
    let again = again["id"].as_str().unwrap().to_owned();
    let confirm = format!("/api/v1/coupon-holds/{again}/confirm");
    let (status, body) = app.call_as(&till_a, "POST", &confirm, None, Some("c-1")).await;
    assert_eq!((status, &body["status"]), (200, &json!("confirmed")), "{body}");
    assert!(body["redemption_id"].is_i64());
    let (status, replay) = app.call_as(&till_a, "POST", &confirm, None, Some("c-1")).await;
    assert_eq!((status, &replay), (200, &body));
    let (status, body) = app.call_as(&till_a, "POST", &confirm, None, None).await;
    assert_eq!((status, code_of(&body)), (409, Some("coupon_hold_already_resolved")));
    let (_, check) = app.call("GET", &format!("/api/v1/coupons/{code}"), None).await;
    assert_eq!((&check["uses"], &check["refusal"]), (&json!(1), &json!("coupon_exhausted")));
    app.clock.advance(Duration::days(1));
    let (status, body) =
        app.call_as(&till_b, "POST", &holds, Some(json!({"customer_id": b, "ttl_seconds": 60})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("coupon_exhausted")), "a confirmed hold is a use for good");
    assert_eq!(app.call_as(&till_b, "POST", "/api/v1/coupon-holds/chl_999/release", None, None).await.0, 404);
}

async fn carts_are_priced_with_promotions_tiers_and_coupons(app: &TestApp) {
    let promotions = [
        json!({"name": "3 for 2 mugs", "buy": 2, "get": 1, "sku": "MUG", "currency": "EUR"}),
        json!({"name": "10% pastries", "percent_off": 10, "category": "pastry", "currency": "EUR"}),
        json!({"name": "Gold 5 off", "amount_off_minor": 500, "currency": "EUR", "tiers": ["gold"], "minimum_minor": 2000}),
        json!({"name": "Too late", "percent_off": 50, "currency": "EUR", "valid_until": "2026-06-01T00:00:00Z"}),
        json!({"name": "Platinum 60%", "percent_off": 60, "currency": "EUR", "tiers": ["platinum"], "stacking": "exclusive"}),
    ];
    let (status, body) =
        app.call("POST", "/api/v1/promotions", Some(json!({"name": "x", "buy": 2, "currency": "EUR"}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("get")), "{body}");
    for p in promotions {
        let (status, body) = app.call("POST", "/api/v1/promotions", Some(p)).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(app.call("GET", "/api/v1/promotions", None).await.1["items"].as_array().unwrap().len(), 5);
    let c = customer(app, "c1").await;
    let cart = |coupons: Value| {
        json!({
            "customer_id": c, "currency": "EUR", "coupons": coupons,
            "lines": [
                {"sku": "MUG", "quantity": 3, "unit_price_minor": 800},
                {"sku": "CROISSANT", "category": "pastry", "quantity": 2, "unit_price_minor": 250},
            ],
        })
    };
    let analyst = app.key(Role::Analyst).await;
    let (status, priced) = app.call_as(&analyst, "POST", "/api/v1/checkout/price", Some(cart(json!([]))), None).await;
    assert_eq!(status, 200, "{priced}");
    // 2400 + 500; one mug free (800), 10% of the pastries (50); no gold promotion for a customer without tier.
    assert_eq!((&priced["discount_minor"], &priced["total_minor"]), (&json!(850), &json!(2050)), "{priced}");
    assert_eq!(
        (&priced["lines"][0]["discount_minor"], &priced["lines"][1]["discount_minor"]),
        (&json!(800), &json!(50))
    );
    set_tier(app, &c, "gold").await;
    let (_, priced) = app.call("POST", "/api/v1/checkout/price", Some(cart(json!([])))).await;
    assert_eq!(priced["total_minor"], json!(1550), "{priced}");
    // An exclusive promotion wins when it gives more than the combinable ones together.
    set_tier(app, &c, "platinum").await;
    let (_, priced) = app.call("POST", "/api/v1/checkout/price", Some(cart(json!([])))).await;
    assert_eq!((&priced["discount_minor"], &priced["total_minor"]), (&json!(1740), &json!(1160)), "{priced}");
    assert_eq!(priced["applied"].as_array().unwrap().len(), 1, "{priced}");
    set_tier(app, &c, "gold").await;
    // A coupon of 100% off, and one that does not exist: nothing goes negative.
    let (_, batch) =
        app.call("POST", "/api/v1/coupons", Some(json!({"name": "All", "count": 1, "percent_off": 100}))).await;
    let all = batch["codes"][0].as_str().unwrap();
    let (status, priced) = app.call("POST", "/api/v1/checkout/price", Some(cart(json!([all, "NOSUCHCODE"])))).await;
    assert_eq!(status, 200, "{priced}");
    assert_eq!(priced["total_minor"], json!(0), "{priced}");
    assert!(priced["lines"].as_array().unwrap().iter().all(|l| l["total_minor"] == json!(0)));
    assert_eq!(
        (&priced["coupons"][0]["applied"], &priced["coupons"][1]["refusal"]),
        (&json!(true), &json!("coupon_not_found"))
    );
    let mut bad = cart(json!([]));
    bad["lines"][1]["quantity"] = json!(0);
    let (status, body) = app.call("POST", "/api/v1/checkout/price", Some(bad)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("lines[1].quantity")), "{body}");
}

async fn vip_tokens_are_signed_checked_and_refused(app: &TestApp) {
    let sale = json!({
        "name": "Summer sale", "early_access_from": "2026-06-02T00:00:00Z", "starts_at": "2026-06-05T00:00:00Z",
        "ends_at": "2026-06-10T00:00:00Z", "tiers": ["gold", "platinum"],
    });
    let mut bad = sale.clone();
    bad["early_access_from"] = json!("2026-06-06T00:00:00Z");
    let (status, body) = app.call("POST", "/api/v1/sales", Some(bad)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("early_access_from")), "{body}");
    let (status, created) = app.call("POST", "/api/v1/sales", Some(sale)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (gold, silver) = (customer(app, "gold").await, customer(app, "silver").await);
    set_tier(app, &gold, "gold").await;
    set_tier(app, &silver, "silver").await;
    let till = app.key(Role::Integration).await;
    let tokens = format!("/api/v1/sales/{id}/access-tokens");
    let (status, body) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": silver})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("sale_not_for_tier")), "{body}");
    let (status, issued) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": gold})), Some("t-1")).await;
    assert_eq!((status, &issued["tier"]), (201, &json!("gold")), "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let (status, replay) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": gold})), Some("t-1")).await;
    assert_eq!((status, &replay), (201, &issued));
    let (_, again) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": gold})), None).await;
    assert_eq!(again["token"], issued["token"], "the same customer and sale: the same token");
    let check = |t: &str| format!("/api/v1/sales/{id}/access?token={t}");
    // Before early access opens, the token is refused as not yet open; inside, it checks out.
    let (status, body) = app.call("GET", &check(&token), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("sale_not_open")), "{body}");
    app.clock.advance(Duration::days(2));
    let (status, body) = app.call_as(&till, "GET", &check(&token), None, None).await;
    assert_eq!(
        (status, &body["valid"], &body["early"], &body["customer_id"]),
        (200, &json!(true), &json!(true), &json!(gold)),
        "{body}"
    );
    // Tampered: another customer in the payload, or a changed signature.
    let forged = token.replacen(&gold, &silver, 1);
    let (status, body) = app.call("GET", &check(&forged), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("access_token_invalid")), "{body}");
    let mut flipped = token.clone();
    let last = if flipped.ends_with('0') { '1' } else { '0' };
    flipped.pop();
    flipped.push(last);
    assert_eq!(code_of(&app.call("GET", &check(&flipped), None).await.1), Some("access_token_invalid"));
    assert_eq!(code_of(&app.call("GET", &check("garbage"), None).await.1), Some("access_token_invalid"));
    // A token of another sale does not open this one.
    let other = json!({"name": "Winter", "early_access_from": "2026-06-01T00:00:00Z", "starts_at": "2026-06-01T00:00:00Z", "ends_at": "2026-07-01T00:00:00Z", "tiers": ["gold"]});
    let (_, other) = app.call("POST", "/api/v1/sales", Some(other)).await;
    let other_id = other["id"].as_str().unwrap();
    let (status, body) = app.call("GET", &format!("/api/v1/sales/{other_id}/access?token={token}"), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("access_token_invalid")), "{body}");
    app.clock.advance(Duration::days(10));
    let (status, body) = app.call("GET", &check(&token), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("sale_not_open")), "after the sale: {body}");
}

async fn vip_tokens_go_to_the_segments_of_the_latest_snapshot(app: &TestApp) {
    let sale = json!({
        "name": "Champions' preview", "early_access_from": "2026-06-02T00:00:00Z",
        "starts_at": "2026-06-05T00:00:00Z", "ends_at": "2026-06-10T00:00:00Z",
    });
    // Neither tiers nor segments: refused, naming the field; an unknown segment too.
    let (status, body) = app.call("POST", "/api/v1/sales", Some(sale.clone())).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("tiers")), "{body}");
    let mut empty = sale.clone();
    (empty["tiers"], empty["segments"]) = (json!([]), json!([]));
    let (status, body) = app.call("POST", "/api/v1/sales", Some(empty)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("tiers")), "{body}");
    let mut typo = sale.clone();
    typo["segments"] = json!(["champions", "champion"]);
    let (status, body) = app.call("POST", "/api/v1/sales", Some(typo)).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("segments[1]")), "{body}");
    let mut champions = sale.clone();
    champions["segments"] = json!(["champions"]);
    let (status, created) = app.call("POST", "/api/v1/sales", Some(champions)).await;
    assert_eq!(
        (status, &created["tiers"], &created["segments"]),
        (201, &json!([]), &json!(["champions"])),
        "{created}"
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let (champ, loyal, gold) =
        (customer(app, "champ").await, customer(app, "loyal").await, customer(app, "gold").await);
    set_tier(app, &gold, "gold").await;
    let till = app.key(Role::Integration).await;
    let tokens = format!("/api/v1/sales/{id}/access-tokens");
    // Before any snapshot, nobody is in a segment.
    let (status, body) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": champ})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("sale_not_for_tier")), "{body}");
    set_segments(app, &[(&champ, "champions"), (&loyal, "loyal"), (&gold, "loyal")]).await;
    let (status, issued) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": champ})), None).await;
    assert_eq!((status, &issued["segment"], &issued["tier"]), (201, &json!("champions"), &Value::Null), "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    for other in [&loyal, &gold] {
        let (status, body) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": other})), None).await;
        assert_eq!((status, code_of(&body)), (409, Some("sale_not_for_tier")), "{other}: {body}");
    }
    app.clock.advance(Duration::days(2));
    let (status, body) =
        app.call_as(&till, "GET", &format!("/api/v1/sales/{id}/access?token={token}"), None, None).await;
    assert_eq!((status, &body["early"], &body["customer_id"]), (200, &json!(true), &json!(champ)), "{body}");
    // A sale naming a tier and a segment takes either.
    let both = json!({
        "name": "Gold or loyal", "early_access_from": "2026-06-03T00:00:00Z", "starts_at": "2026-06-05T00:00:00Z",
        "ends_at": "2026-06-10T00:00:00Z", "tiers": ["gold"], "segments": ["loyal"],
    });
    let (_, both) = app.call("POST", "/api/v1/sales", Some(both)).await;
    let both_tokens = format!("/api/v1/sales/{}/access-tokens", both["id"].as_str().unwrap());
    for (who, tier, segment) in [(&gold, json!("gold"), json!("loyal")), (&loyal, Value::Null, json!("loyal"))] {
        let (status, issued) = app.call_as(&till, "POST", &both_tokens, Some(json!({"customer_id": who})), None).await;
        assert_eq!((status, &issued["tier"], &issued["segment"]), (201, &tier, &segment), "{who}: {issued}");
    }
    let (status, body) = app.call_as(&till, "POST", &both_tokens, Some(json!({"customer_id": champ})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("sale_not_for_tier")), "{body}");
    // A newer snapshot moves the champion out: a new grant is refused, the token given before still opens.
    set_segments(app, &[(&champ, "need_attention"), (&loyal, "champions")]).await;
    let (status, body) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": champ})), None).await;
    assert_eq!((status, code_of(&body)), (409, Some("sale_not_for_tier")), "{body}");
    let (status, issued) = app.call_as(&till, "POST", &tokens, Some(json!({"customer_id": loyal})), None).await;
    assert_eq!((status, &issued["segment"]), (201, &json!("champions")), "{issued}");
    let (status, _) = app.call("GET", &format!("/api/v1/sales/{id}/access?token={token}"), None).await;
    assert_eq!(status, 200);
}

/// Every schema the OpenAPI document refers to exists, and this part's routes name their own.
#[tokio::test]
async fn the_openapi_document_describes_these_routes() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let app = TestApp::spawn().await;
    let (_, doc) = app.call("GET", "/api/v1/openapi.json", None).await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in &found {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{r} is missing");
    }
    let redeem = &doc["paths"]["/api/v1/rewards/{id}/redeem"]["post"];
    assert_eq!(
        redeem["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/RewardRedeemIn")
    );
    assert_eq!(
        doc["paths"]["/api/v1/checkout/price"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/Priced")
    );
    app.stop().await;
}

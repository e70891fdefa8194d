//! The loyalty API end to end, on SQLite and on PostgreSQL: the program, orders earning points, wallets,
//! redemptions, holds driven by the test clock, refunds taking points back, statements and refusals.

use chrono::Duration;
use regulars_core::Role;
use regulars_testkit::TestApp;
use serde_json::{Value, json};

const PROGRAM: &str = r#"
name = "Coffee club"
currency = "EUR"
lock_days = 14
expiry = { after_days = 365 }
shortfall = "debt"

[earning]
points_per_unit = 2
welcome_bonus = 50
categories = [{ category = "pastry", multiplier = "0.5" }]
big_spender = [{ above = "100.00", points = 100 }]
"#;

async fn customer(app: &TestApp, external_id: &str) -> String {
    let (status, body) = app.call("POST", "/api/v1/customers", Some(json!({"external_id": external_id}))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn put_program(app: &TestApp, text: &str) -> (u16, Value) {
    let (status, body) = app.raw(&app.owner_key, "PUT", "/api/v1/loyalty/program", Some(text.to_owned()), None).await;
    (status, serde_json::from_str(&body).unwrap())
}

async fn wallet(app: &TestApp, customer: &str) -> Value {
    let (status, body) = app.call("GET", &format!("/api/v1/customers/{customer}/wallet"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn adjust(app: &TestApp, customer: &str, points: i64) {
    let path = format!("/api/v1/customers/{customer}/wallet/adjust");
    let (status, body) = app.call("POST", &path, Some(json!({"points": points, "reason": "opening balance"}))).await;
    assert_eq!(status, 200, "{body}");
}

async fn assert_verified(app: &TestApp) {
    assert_eq!(app.db.store.verify_loyalty().await.unwrap().findings, vec![]);
}

regulars_testkit::on_both_servers!(
    orders_earn_points_that_mature_with_the_clock_and_can_be_spent,
    holds_are_captured_voided_or_expire_with_the_clock,
    sixty_four_concurrent_redemptions_of_ten_against_a_hundred,
);

async fn orders_earn_points_that_mature_with_the_clock_and_can_be_spent(app: &TestApp) {
    let (status, body) = app.call("GET", "/api/v1/loyalty/program", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = put_program(app, &PROGRAM.replace("points_per_unit = 2", "points_per_unit = \"two\"")).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("program")), "{body}");
    let (status, body) = put_program(app, &PROGRAM.replace("\"0.5\"", "\"0.5.1\"")).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("multiplier"), "{body}");
    let (status, body) = put_program(app, &PROGRAM.replace("welcome_bonus = 50", "welcome_bonus = -5")).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("earning.welcome_bonus")), "{body}");
    let (status, body) = put_program(app, PROGRAM).await;
    assert_eq!((status, &body["version"], &body["name"]), (200, &json!(1), &json!("Coffee club")), "{body}");
    let (_, body) = app.call("GET", "/api/v1/loyalty/program", None).await;
    assert_eq!(body["definition"].as_str(), Some(PROGRAM));

    let id = customer(app, "c1").await;
    let product = json!({"sku": "CROISSANT", "name": "Croissant", "category": "pastry"});
    assert_eq!(app.call("POST", "/api/v1/products", Some(product)).await.0, 200);
    let order = json!({
        "external_id": "pos-1", "customer_id": id, "placed_at": "2026-05-30T08:00:00Z", "currency": "EUR",
        "lines": [{"sku": "BEANS", "quantity": 2, "unit_price_minor": 1250}, {"sku": "CROISSANT", "quantity": 2, "unit_price_minor": 250}],
    });
    // The dry run says what the order would earn and why: (25.00 + 5.00 x 0.5) x 2 + 50 welcome.
    let dry = json!({"customer_id": id, "currency": "EUR", "lines": order["lines"]});
    let (status, body) = app.call("POST", "/api/v1/loyalty/dry-run", Some(dry)).await;
    assert_eq!((status, &body["points"]), (200, &json!(105)), "{body}");
    assert!(body["explanation"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("welcome bonus")));
    for _ in 0..3 {
        let (status, _) = app.call("POST", "/api/v1/orders", Some(order.clone())).await;
        assert!(status == 201 || status == 200);
    }
    let w = wallet(app, &id).await;
    assert_eq!((&w["available"], &w["pending"], &w["lots"][0]["status"]), (&json!(0), &json!(105), &json!("pending")));
    let path = format!("/api/v1/customers/{id}/wallet/redeem");
    let (status, body) = app.call("POST", &path, Some(json!({"points": 10, "reason": "croissant"}))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("insufficient_points")), "{body}");
    assert_eq!(body["status"], 409);

    // Two weeks later the points are available.
    app.clock.advance(Duration::days(14));
    let w = wallet(app, &id).await;
    assert_eq!((&w["available"], &w["pending"]), (&json!(105), &json!(0)));
    let first = app
        .raw(
            &app.owner_key,
            "POST",
            &path,
            Some(json!({"points": 30, "reason": "croissant"}).to_string()),
            Some("till-1-17"),
        )
        .await;
    assert_eq!(first.0, 200, "{}", first.1);
    let again = app
        .raw(
            &app.owner_key,
            "POST",
            &path,
            Some(json!({"points": 30, "reason": "croissant"}).to_string()),
            Some("till-1-17"),
        )
        .await;
    assert_eq!(again, first, "a replay returns the first response and spends nothing");
    let other =
        app.raw(&app.owner_key, "POST", &path, Some(json!({"points": 31}).to_string()), Some("till-1-17")).await;
    assert_eq!(other.0, 422);
    assert_eq!(wallet(app, &id).await["available"], 75);
    let (status, body) = app.call("POST", &path, Some(json!({"points": 0}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("points")));

    // A refund of half the order takes back half its points (the welcome bonus included).
    let order_id = app.call("GET", &format!("/api/v1/customers/{id}/orders"), None).await.1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/v1/orders/{order_id}/refunds"),
            Some(json!({"lines": [{"line": 0, "quantity": 2}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let w = wallet(app, &id).await;
    // 25.00 of 30.00 refunded: floor(105 x 2500 / 3000) = 87 taken back, 75 from the wallet, 12 owed.
    assert_eq!((&w["available"], &w["owed"]), (&json!(0), &json!(12)), "{w}");
    let (status, statement) = app.call("GET", &format!("/api/v1/customers/{id}/wallet/statement"), None).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = statement["items"].as_array().unwrap().iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(
        lines,
        [
            "+55: order pos-1, 2 per EUR, a product multiplier on 1 line (pending)",
            "+50: order pos-1, welcome bonus (pending)",
            "105: now available",
            "-30: redeemed, croissant",
            "-75: order pos-1 refunded (ref_1)",
            "-12: order pos-1 refunded (ref_1); already spent, owed",
        ]
    );
    let analyst = app.key(Role::Analyst).await;
    let (status, _) = app.call_as(&analyst, "GET", &format!("/api/v1/customers/{id}/wallet"), None, None).await;
    assert_eq!(status, 200, "an analyst reads wallets");
    let cashier = app.key(Role::Cashier).await;
    let adjust_path = format!("/api/v1/customers/{id}/wallet/adjust");
    let (status, _) =
        app.call_as(&cashier, "POST", &adjust_path, Some(json!({"points": 5, "reason": "x"})), None).await;
    assert_eq!(status, 403, "only the owner adjusts");
    assert_verified(app).await;
}

async fn holds_are_captured_voided_or_expire_with_the_clock(app: &TestApp) {
    let id = customer(app, "c1").await;
    adjust(app, &id, 100).await;
    let till = app.key(Role::Cashier).await;
    let holds = format!("/api/v1/customers/{id}/wallet/holds");
    let (status, hold) =
        app.call_as(&till, "POST", &holds, Some(json!({"points": 60, "ttl_seconds": 300})), None).await;
    assert_eq!((status, &hold["status"], &hold["wallet"]["held"]), (201, &json!("open"), &json!(60)), "{hold}");
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    assert!(hold_id.starts_with("hld_"));
    let capture = format!("/api/v1/holds/{hold_id}/capture");
    let (status, body) = app.call_as(&till, "POST", &capture, Some(json!({"points": 61})), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("capture_exceeds_hold")));
    let (status, body) = app.call_as(&till, "POST", &capture, Some(json!({"points": 45})), None).await;
    assert_eq!((status, &body["points"], &body["wallet"]["available"]), (200, &json!(45), &json!(55)), "{body}");
    let (status, body) = app.call_as(&till, "POST", &format!("/api/v1/holds/{hold_id}/void"), None, None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("hold_already_resolved")));

    let (_, second) = app.call_as(&till, "POST", &holds, Some(json!({"points": 50, "ttl_seconds": 60})), None).await;
    let second = second["id"].as_str().unwrap().to_owned();
    assert_eq!(wallet(app, &id).await["available"], 5);
    // The checkout never completes: a minute later the hold has released itself.
    app.clock.advance(Duration::seconds(60));
    let w = wallet(app, &id).await;
    assert_eq!((&w["available"], &w["held"]), (&json!(55), &json!(0)));
    let (status, body) =
        app.call_as(&till, "POST", &format!("/api/v1/holds/{second}/capture"), Some(json!({})), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("hold_expired")));
    let (_, third) = app.call_as(&till, "POST", &holds, Some(json!({"points": 55, "ttl_seconds": 60})), None).await;
    let third = third["id"].as_str().unwrap().to_owned();
    let (status, body) = app.call_as(&till, "POST", &format!("/api/v1/holds/{third}/void"), None, Some("void-1")).await;
    assert_eq!((status, &body["status"], &body["wallet"]["available"]), (200, &json!("voided"), &json!(55)));
    let (status, _) = app.call_as(&till, "POST", "/api/v1/holds/hld_999999/void", None, None).await;
    assert_eq!(status, 404);
    assert_verified(app).await;
}

async fn sixty_four_concurrent_redemptions_of_ten_against_a_hundred(app: &TestApp) {
    let id = customer(app, "hot").await;
    adjust(app, &id, 100).await;
    let till = app.key(Role::Integration).await;
    let path = app.url(&format!("/api/v1/customers/{id}/wallet/redeem"));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (client, path, key) = (app.client.clone(), path.clone(), till.clone());
            tokio::spawn(async move {
                let r = client
                    .post(path)
                    .bearer_auth(key)
                    .header("idempotency-key", format!("till-{i}"))
                    .json(&json!({"points": 10}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            409 => {
                assert_eq!(body["code"], "insufficient_points");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((ok, refused), (10, 54));
    let w = wallet(app, &id).await;
    assert_eq!((&w["available"], &w["held"]), (&json!(0), &json!(0)));
    assert_verified(app).await;
}

#[tokio::test]
async fn coupons_are_created_validated_and_redeemed_within_their_limits() {
    let app = TestApp::spawn().await;
    let (a, b) = (customer(&app, "a").await, customer(&app, "b").await);
    let batch = json!({"name": "Welcome back", "count": 3, "percent_off": 15, "max_uses": 1, "max_uses_per_customer": 1,
                       "valid_until": "2026-07-01T00:00:00Z"});
    let (status, created) = app.call("POST", "/api/v1/coupons", Some(batch)).await;
    assert_eq!(status, 201, "{created}");
    let codes: Vec<String> =
        created["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 3);
    let code = &codes[0];
    let (status, check) = app.call("GET", &format!("/api/v1/coupons/{code}?customer_id={a}"), None).await;
    assert_eq!((status, &check["valid"], &check["offer"]["percent_off"]), (200, &json!(true), &json!(15)), "{check}");
    // Typed as people type it: lower case, dashes.
    let typed = format!("{}-{}", &code[..4].to_lowercase(), &code[4..]);
    let till = app.key(Role::Cashier).await;
    let (status, redeemed) = app
        .call_as(&till, "POST", &format!("/api/v1/coupons/{typed}/redeem"), Some(json!({"customer_id": a})), None)
        .await;
    assert_eq!((status, &redeemed["uses"]), (200, &json!(1)), "{redeemed}");
    let (status, body) = app
        .call_as(&till, "POST", &format!("/api/v1/coupons/{code}/redeem"), Some(json!({"customer_id": b})), None)
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("coupon_exhausted")), "{body}");
    let (_, check) = app.call("GET", &format!("/api/v1/coupons/{code}"), None).await;
    assert_eq!((&check["valid"], &check["refusal"]), (&json!(false), &json!("coupon_exhausted")));
    let (status, body) =
        app.call("POST", "/api/v1/coupons", Some(json!({"name": "x", "count": 1, "percent_off": 120}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("percent_off")));
    let (status, _) = app
        .call_as(&till, "POST", "/api/v1/coupons", Some(json!({"name": "x", "count": 1, "percent_off": 5})), None)
        .await;
    assert_eq!(status, 403, "only the owner creates coupons");
    app.clock.advance(Duration::days(31));
    let (status, body) = app
        .call_as(&till, "POST", &format!("/api/v1/coupons/{}/redeem", codes[1]), Some(json!({"customer_id": b})), None)
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("coupon_expired")), "{body}");
    app.stop().await;
}

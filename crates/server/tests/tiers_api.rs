//! Tiers, "points expiring" reminders and earning events through the API, on SQLite and on PostgreSQL, with
//! time driven by the test clock and the periodic loyalty job run by hand (`Store::loyalty_tick`, what
//! `regulars serve` runs on its interval).

use chrono::Duration;
use regulars_core::Role;
use regulars_testkit::TestApp;
use serde_json::{Value, json};

regulars_testkit::on_both_servers!(
    crossing_a_threshold_upgrades_and_time_downgrades_one_step_at_a_time,
    points_expiring_reminders_are_recorded_once_per_lot_and_window,
    sign_up_referral_birthday_and_custom_events_earn_once,
);

async fn put_program(app: &TestApp, text: &str) {
    let (status, body) = app.raw(&app.owner_key, "PUT", "/api/v1/loyalty/program", Some(text.to_owned()), None).await;
    assert_eq!(status, 200, "{body}");
}

async fn customer(app: &TestApp, body: Value) -> String {
    let (status, body) = app.call("POST", "/api/v1/customers", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn order(app: &TestApp, external_id: &str, customer: &str, euros: i64) {
    let body = json!({
        "external_id": external_id, "customer_id": customer, "placed_at": "2026-05-30T08:00:00Z", "currency": "EUR",
        "lines": [{"sku": "BEANS", "quantity": 1, "unit_price_minor": euros * 100}],
    });
    let (status, body) = app.call("POST", "/api/v1/orders", Some(body)).await;
    assert!(status == 201 || status == 200, "{body}");
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.call("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn available(app: &TestApp, customer: &str) -> i64 {
    let w = get(app, &format!("/api/v1/customers/{customer}/wallet")).await;
    w["available"].as_i64().unwrap() + w["pending"].as_i64().unwrap()
}

async fn tick(app: &TestApp, birthdays: bool) -> regulars_store::LoyaltyTick {
    app.db.store.loyalty_tick(app.clock.now(), birthdays).await.unwrap()
}

async fn assert_verified(app: &TestApp) {
    assert_eq!(app.db.store.verify_loyalty().await.unwrap().findings, vec![]);
}

const TIERS: &str = r#"
name = "Tiers"
currency = "EUR"

[earning]
points_per_unit = 1

[tiers]
measure = "points_earned"
window_days = 30
grace_days = 10
levels = [
  { name = "Silver", threshold = 100, multiplier = "1.5" },
  { name = "Gold", threshold = 300, multiplier = "2", perks = ["free coffee"], early_access = true },
]
"#;

async fn crossing_a_threshold_upgrades_and_time_downgrades_one_step_at_a_time(app: &TestApp) {
    put_program(app, TIERS).await;
    let id = customer(app, json!({"external_id": "t1"})).await;
    let tier_path = format!("/api/v1/customers/{id}/tier");
    let t = get(app, &tier_path).await;
    assert_eq!((&t["tier"], &t["history"]), (&Value::Null, &json!([])), "{t}");

    // 350 points earned at no tier: straight to Gold, with the reason.
    order(app, "t1-1", &id, 350).await;
    let w = get(app, &format!("/api/v1/customers/{id}/wallet")).await;
    assert_eq!((&w["tier"], &w["available"]), (&json!("Gold"), &json!(350)), "{w}");
    let t = get(app, &tier_path).await;
    assert_eq!(t["history"].as_array().unwrap().len(), 1, "{t}");
    let change = &t["history"][0];
    assert_eq!(
        (&change["from"], &change["to"], &change["reason"], &change["measure"], &change["threshold"]),
        (&Value::Null, &json!("Gold"), &json!("qualified"), &json!(350), &json!(300)),
        "{t}"
    );
    assert_eq!(t["benefits"], json!({"multiplier": "2x", "perks": ["free coffee"], "early_access": true}));

    // Gold's multiplier applies to the next order: 10 EUR earn 20 points.
    order(app, "t1-2", &id, 10).await;
    assert_eq!(available(app, &id).await, 370);
    let (status, statement) = app.call("GET", &format!("/api/v1/customers/{id}/wallet/statement"), None).await;
    assert_eq!(status, 200);
    assert!(statement.to_string().contains("Gold"), "the statement names the tier boost: {statement}");

    // The window passes: nothing earned in the last 30 days. Grace starts; still Gold meanwhile.
    app.clock.advance(Duration::days(31));
    let done = tick(app, true).await;
    assert_eq!((done.tiers_evaluated, done.tier_changes), (1, 0));
    let t = get(app, &tier_path).await;
    assert_eq!(t["tier"], "Gold");
    assert!(t["grace_ends_at"].is_string(), "{t}");
    app.clock.advance(Duration::days(9));
    tick(app, true).await;
    assert_eq!(get(app, &tier_path).await["tier"], "Gold", "grace lasts 10 days");

    // After the grace period: one step down, to Silver, not to no tier; running the job again changes nothing.
    app.clock.advance(Duration::days(1));
    assert_eq!(tick(app, true).await.tier_changes, 1);
    assert_eq!(tick(app, true).await.tier_changes, 0);
    let t = get(app, &tier_path).await;
    assert_eq!(t["tier"], "Silver", "{t}");
    let change = &t["history"][1];
    assert_eq!(
        (&change["from"], &change["to"], &change["reason"], &change["measure"], &change["threshold"]),
        (&json!("Gold"), &json!("Silver"), &json!("downgraded"), &json!(0), &json!(300)),
        "{t}"
    );
    assert_eq!(get(app, &format!("/api/v1/customers/{id}/wallet")).await["tier"], "Silver");

    // Silver's multiplier: 10 EUR earn 15 points, still below Silver's 100, so the next step down follows.
    order(app, "t1-3", &id, 10).await;
    assert_eq!(available(app, &id).await, 385);
    app.clock.advance(Duration::days(10));
    assert_eq!(tick(app, true).await.tier_changes, 1);
    let t = get(app, &tier_path).await;
    assert_eq!((&t["tier"], t["history"].as_array().unwrap().len()), (&Value::Null, 3), "{t}");
    assert_eq!(t["history"][2]["to"], Value::Null);
    // Earning again past a threshold upgrades at once.
    order(app, "t1-4", &id, 120).await;
    assert_eq!(get(app, &tier_path).await["tier"], "Silver");
    let (status, _) = app.call("GET", "/api/v1/customers/cus_999999/tier", None).await;
    assert_eq!(status, 404);
    assert_verified(app).await;
}

const REMINDERS: &str = r#"
name = "Reminders"
currency = "EUR"
expiry = { after_days = 40 }
expiry_reminder_days = [30, 7]

[earning]
points_per_unit = 1
"#;

async fn events(app: &TestApp, query: &str) -> Value {
    get(app, &format!("/api/v1/loyalty/events{query}")).await
}

async fn points_expiring_reminders_are_recorded_once_per_lot_and_window(app: &TestApp) {
    put_program(app, REMINDERS).await;
    let id = customer(app, json!({"external_id": "r1"})).await;
    order(app, "r1-1", &id, 50).await;
    let other = customer(app, json!({"external_id": "r2"})).await;
    order(app, "r2-1", &other, 5).await;
    assert_eq!(tick(app, true).await.reminders, 0, "40 days left: no reminder yet");

    // 10 days before expiry: the 30-day reminder, once however often the job runs.
    app.clock.advance(Duration::days(30));
    assert_eq!(tick(app, true).await.reminders, 2);
    assert_eq!(tick(app, true).await.reminders, 0);
    let page = events(app, "?kind=points_expiring").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(
        (&items[0]["kind"], &items[0]["customer_id"], &items[0]["points"]),
        (&json!("points_expiring"), &json!(id), &json!(50))
    );
    assert_eq!(items[0]["expires_at"], "2026-07-11T10:00:00.000Z");

    // 8 days before: the 7-day reminder is not due yet.
    app.clock.advance(Duration::days(2));
    assert_eq!(tick(app, true).await.reminders, 0);
    // 7 days before: it is, once.
    app.clock.advance(Duration::days(1));
    assert_eq!(tick(app, true).await.reminders, 2);
    assert_eq!(tick(app, true).await.reminders, 0);
    let page = events(app, "").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);

    // Paging by cursor, and who may read.
    let first = events(app, "?kind=points_expiring&limit=3").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let rest = events(app, &format!("?kind=points_expiring&cursor={cursor}")).await;
    assert_eq!((rest["items"].as_array().unwrap().len(), &rest["next_cursor"]), (1, &Value::Null));
    let (status, body) = app.call("GET", "/api/v1/loyalty/events?kind=birthdays", None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("kind")), "{body}");
    let analyst = app.key(Role::Analyst).await;
    assert_eq!(app.call_as(&analyst, "GET", "/api/v1/loyalty/events", None, None).await.0, 200);
    let cashier = app.key(Role::Cashier).await;
    assert_eq!(app.call_as(&cashier, "GET", "/api/v1/loyalty/events", None, None).await.0, 403);

    // Spent points are not reminded of, and expired lots are not either.
    app.clock.advance(Duration::days(8));
    assert_eq!(tick(app, true).await.reminders, 0);
    assert_eq!(available(app, &id).await, 0, "expired");
    assert_verified(app).await;
}

const EARNING: &str = r#"
name = "Earning"
currency = "EUR"
lock_days = 14

[earning]
points_per_unit = 1
sign_up = 25
birthday = 40
referral = { referrer = 100, friend = 50 }
events = [{ name = "review", points = 20, limit_per_customer = 2 }]
"#;

async fn sign_up_referral_birthday_and_custom_events_earn_once(app: &TestApp) {
    put_program(app, EARNING).await;
    // Sign-up bonus on creation through the API.
    let a = customer(app, json!({"external_id": "a"})).await;
    assert_eq!(available(app, &a).await, 25);

    // A referred friend: a referrer that does not exist is refused, naming the field, and writes nothing.
    let before = app.db.store.counts().await.unwrap().customers;
    let (status, body) =
        app.call("POST", "/api/v1/customers", Some(json!({"external_id": "b", "referred_by": "cus_999999"}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("referred_by")), "{body}");
    assert_eq!(app.db.store.counts().await.unwrap().customers, before);
    let b = customer(app, json!({"external_id": "b", "referred_by": a})).await;
    assert_eq!(available(app, &b).await, 25);
    let dry = json!({"customer_id": b, "currency": "EUR", "lines": [{"sku": "BEANS", "quantity": 1, "unit_price_minor": 1000}]});
    let (status, body) = app.call("POST", "/api/v1/loyalty/dry-run", Some(dry)).await;
    assert_eq!((status, &body["points"]), (200, &json!(60)), "the dry run counts the friend's bonus: {body}");
    // The friend's first order pays both, once, however often it is recorded; the second pays no referral.
    for _ in 0..2 {
        order(app, "b-1", &b, 10).await;
    }
    assert_eq!((available(app, &b).await, available(app, &a).await), (85, 125));
    order(app, "b-2", &b, 10).await;
    assert_eq!((available(app, &b).await, available(app, &a).await), (95, 125));

    // Custom events: the program's points, once per id, within the limit; an unknown event names the field.
    let path = format!("/api/v1/customers/{a}/events");
    let shop = app.key(Role::Integration).await;
    let review = |id: &str| json!({"event": "review", "id": id, "properties": {"stars": 5}});
    let (status, body) = app.call_as(&shop, "POST", &path, Some(review("r1")), None).await;
    assert_eq!((status, &body["points"], &body["event"]), (200, &json!(20), &json!("review")), "{body}");
    let (status, again) = app.call_as(&shop, "POST", &path, Some(review("r1")), None).await;
    assert_eq!((status, &again["points"]), (200, &json!(20)), "a replay answers as the first time: {again}");
    assert_eq!(available(app, &a).await, 145, "and earns nothing more");
    assert_eq!(app.call_as(&shop, "POST", &path, Some(review("r2")), None).await.0, 200);
    let (status, body) = app.call_as(&shop, "POST", &path, Some(review("r3")), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("event_limit_reached")), "{body}");
    let (status, body) = app.call_as(&shop, "POST", &path, Some(json!({"event": "tweet"})), None).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("event")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("tweet"), "{body}");
    assert_eq!(available(app, &a).await, 165);
    // Without an id, the Idempotency-Key makes the event once: a replay is the first response, byte for byte.
    let b_events = format!("/api/v1/customers/{b}/events");
    let first = app.raw(&shop, "POST", &b_events, Some(json!({"event": "review"}).to_string()), Some("k-1")).await;
    let again = app.raw(&shop, "POST", &b_events, Some(json!({"event": "review"}).to_string()), Some("k-1")).await;
    assert_eq!((first.0, &again), (200, &first));
    assert_eq!(available(app, &b).await, 115);
    let cashier = app.key(Role::Cashier).await;
    assert_eq!(app.call_as(&cashier, "POST", &path, Some(review("r9")), None).await.0, 403);

    // Birthdays: granted by the job on the day in the customer's time zone, once a year. It is
    // 2026-06-01 10:00 UTC: already 2 June in Kiritimati (UTC+14), still 1 June in UTC.
    let today = customer(app, json!({"external_id": "c", "birthday": "1990-06-01"})).await;
    let kiritimati =
        customer(app, json!({"external_id": "d", "birthday": "1990-06-02", "time_zone": "Pacific/Kiritimati"})).await;
    let tomorrow = customer(app, json!({"external_id": "e", "birthday": "1990-06-02"})).await;
    assert_eq!(tick(app, true).await.birthdays, 2);
    assert_eq!(tick(app, true).await.birthdays, 0, "once a year");
    assert_eq!(
        (available(app, &today).await, available(app, &kiritimati).await, available(app, &tomorrow).await),
        (65, 65, 25)
    );
    app.clock.advance(Duration::days(1));
    assert_eq!(tick(app, true).await.birthdays, 1);
    app.clock.advance(Duration::days(364));
    assert_eq!(tick(app, true).await.birthdays, 2, "2027-06-01 (2 June in Kiritimati): the next year's");
    assert_eq!(available(app, &today).await, 105);
    assert_verified(app).await;
}

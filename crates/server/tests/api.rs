//! The API end to end: a real server on a loopback port over a real database file.

use regulars_core::Role;
use regulars_core::access::allows;
use regulars_server::routes::ROUTES;
use regulars_testkit::TestApp;
use serde_json::{Value, json};

async fn customer(app: &TestApp, external_id: &str) -> String {
    let (status, body) = app
        .call(
            "POST",
            "/api/v1/customers",
            Some(json!({"external_id": external_id, "email": format!("{external_id}@example.com"), "name": "Ana"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn order_body(external_id: &str, customer_external_id: &str) -> Value {
    json!({
        "external_id": external_id,
        "customer_external_id": customer_external_id,
        "placed_at": "2026-05-30T08:15:00Z",
        "currency": "EUR",
        "lines": [{"sku": "LATTE", "quantity": 2, "unit_price_minor": 350}, {"sku": "BUN", "quantity": 1, "unit_price_minor": 280, "discount_minor": 30}],
    })
}

async fn counts(app: &TestApp) -> (i64, i64) {
    let c = app.db.store.counts().await.unwrap();
    (c.customers, c.orders)
}

#[tokio::test]
async fn every_route_with_every_role() {
    let app = TestApp::spawn().await;
    let mut keys = Vec::new();
    for role in Role::ALL {
        keys.push((role, app.key(role).await));
    }
    for route in ROUTES {
        let path = route.path.replace("{id}", "cus_999999").replace("{prefix}", "rgl_000000000000");
        let path = path.replace("{code}", "NOSUCHCODE");
        let path = if route.path.starts_with("/api/v1/orders/") { path.replace("cus_", "ord_") } else { path };
        let path = if route.path.starts_with("/api/v1/products/") { path.replace("cus_", "prd_") } else { path };
        let body = (route.method != "GET").then(|| "{}".to_owned());
        // Without a key.
        let (status, text) = app.raw("", route.method, &path, body.clone(), None).await;
        match route.operation {
            Some(_) => assert_eq!(status, 401, "{} {path} without a key: {text}", route.method),
            None => assert_eq!(status, 200, "{} {path} is public: {text}", route.method),
        }
        let Some(operation) = route.operation else { continue };
        for (role, key) in &keys {
            let (status, text) = app.raw(key, route.method, &path, body.clone(), None).await;
            if allows(*role, operation) {
                assert!(
                    ![401, 403, 405, 500].contains(&status) && !text.contains("no such route"),
                    "{role} on {} {path}: {status} {text}",
                    route.method
                );
            } else {
                assert_eq!(status, 403, "{role} on {} {path}: {text}", route.method);
                assert!(text.contains("\"code\":\"forbidden\""), "{text}");
            }
        }
    }
    let (status, _) =
        app.raw("rgl_0123456789abcdef0123456789abcdef01234567", "GET", "/api/v1/customers", None, None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test]
async fn customers_can_be_created_found_updated_and_paged() {
    let app = TestApp::spawn().await;
    let id = customer(&app, "c1").await;
    for i in 2..=5 {
        customer(&app, &format!("c{i}")).await;
    }
    let (status, got) = app.call("GET", &format!("/api/v1/customers/{id}"), None).await;
    assert_eq!((status, got["external_id"].as_str()), (200, Some("c1")));
    let (status, patched) = app
        .call(
            "PATCH",
            &format!("/api/v1/customers/{id}"),
            Some(json!({"phone": "+44 20 7946 0958", "name": null, "birthday": "1990-04-01"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["phone"].as_str(), patched["name"].is_null(), patched["email"].as_str()),
        (Some("+442079460958"), true, Some("c1@example.com"))
    );
    let (_, found) = app.call("GET", "/api/v1/customers?email=C1@EXAMPLE.com", None).await;
    assert_eq!(found["items"][0]["id"], id);
    let (_, found) = app.call("GET", "/api/v1/customers?phone=%2B442079460958", None).await;
    assert_eq!(found["items"][0]["id"], id);
    let (_, found) = app.call("GET", "/api/v1/customers?external_id=c3", None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let mut seen = Vec::new();
    let mut path = "/api/v1/customers?limit=2".to_owned();
    loop {
        let (status, page) = app.call("GET", &path, None).await;
        assert_eq!(status, 200);
        seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["external_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/customers?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["c1", "c2", "c3", "c4", "c5"]);
    let (status, body) = app.call("POST", "/api/v1/customers", Some(json!({"external_id": "c1"}))).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (409, Some("already_exists"), Some("external_id"))
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_is_recorded_once_per_external_id() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "c1").await;
    let (status, first) = app.call("POST", "/api/v1/orders", Some(order_body("pos-1", "c1"))).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["total"], json!({"amount_minor": 950, "currency": "EUR"}));
    assert_eq!(first["customer_id"], customer_id);
    let (status, again) = app.call("POST", "/api/v1/orders", Some(order_body("pos-1", "c1"))).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]));
    let (status, listed) = app.call("GET", &format!("/api/v1/customers/{customer_id}/orders"), None).await;
    assert_eq!((status, listed["items"].as_array().unwrap().len()), (200, 1));
    let by_id = json!({"customer_id": customer_id, "placed_at": "2026-05-31T09:00:00+02:00", "currency": "eur", "lines": [{"sku": "TEA", "quantity": 1, "unit_price_minor": 300}]});
    let (status, second) = app.call("POST", "/api/v1/orders", Some(by_id)).await;
    assert_eq!((status, second["placed_at"].as_str()), (201, Some("2026-05-31T07:00:00.000Z")));
    assert_eq!(counts(&app).await.1, 2);
    app.stop().await;
}

#[tokio::test]
async fn refunds_whole_and_per_line() {
    let app = TestApp::spawn().await;
    customer(&app, "c1").await;
    let (_, order) = app.call("POST", "/api/v1/orders", Some(order_body("pos-1", "c1"))).await;
    let id = order["id"].as_str().unwrap();
    let (status, refund) = app
        .call(
            "POST",
            &format!("/api/v1/orders/{id}/refunds"),
            Some(json!({"external_id": "r1", "lines": [{"line": 0, "quantity": 1}], "reason": "spilt"})),
        )
        .await;
    assert_eq!((status, &refund["amount"]["amount_minor"]), (201, &json!(350)), "{refund}");
    let (status, too_many) = app
        .call("POST", &format!("/api/v1/orders/{id}/refunds"), Some(json!({"lines": [{"line": 0, "quantity": 2}]})))
        .await;
    assert_eq!((status, too_many["field"].as_str()), (422, Some("lines[0].quantity")));
    let (status, rest) = app.call("POST", &format!("/api/v1/orders/{id}/refunds"), Some(json!({}))).await;
    assert_eq!((status, &rest["amount"]["amount_minor"]), (201, &json!(600)));
    let (_, after) = app.call("GET", &format!("/api/v1/orders/{id}"), None).await;
    assert_eq!(after["refunded"]["amount_minor"], after["total"]["amount_minor"]);
    let (_, listed) = app.call("GET", &format!("/api/v1/orders/{id}/refunds"), None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_scope() {
    let app = TestApp::spawn().await;
    customer(&app, "c1").await;
    let key = app.owner_key.clone();
    let body = order_body("pos-1", "c1").to_string();
    let first = app.raw(&key, "POST", "/api/v1/orders", Some(body.clone()), Some("k-1")).await;
    assert_eq!(first.0, 201);
    let replay = app.raw(&key, "POST", "/api/v1/orders", Some(body.clone()), Some("k-1")).await;
    assert_eq!(replay, first, "a replay returns the first response byte for byte");
    let other = order_body("pos-2", "c1").to_string();
    let (status, text) = app.raw(&key, "POST", "/api/v1/orders", Some(other), Some("k-1")).await;
    assert_eq!(status, 422);
    assert!(text.contains("idempotency_key_reused"), "{text}");
    assert_eq!(counts(&app).await.1, 1);
    // Customers: the replay creates no second customer even without an external id.
    let anonymous = json!({"name": "Walk-in"}).to_string();
    let a = app.raw(&key, "POST", "/api/v1/customers", Some(anonymous.clone()), Some("k-2")).await;
    let b = app.raw(&key, "POST", "/api/v1/customers", Some(anonymous), Some("k-2")).await;
    assert_eq!((a.0, &a), (201, &b));
    assert_eq!(counts(&app).await.0, 2);
    // Another caller's identical key is a different key.
    let till = app.key(Role::Cashier).await;
    let (status, _) =
        app.raw(&till, "POST", "/api/v1/customers", Some(json!({"name": "Walk-in"}).to_string()), Some("k-2")).await;
    assert_eq!(status, 201);
    let (status, text) = app.raw(&key, "POST", "/api/v1/customers", Some("{}".into()), Some("")).await;
    assert_eq!(status, 400, "{text}");
    app.stop().await;
}

#[tokio::test]
async fn a_replay_while_the_first_request_runs_is_409() {
    let app = TestApp::spawn().await;
    customer(&app, "c1").await;
    // Hold SQLite's write lock from another connection, so the first request waits in the writer.
    let blocker = rusqlite::Connection::open(app.db.url.strip_prefix("sqlite://").unwrap()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = order_body("pos-1", "c1").to_string();
    let first = {
        let (client, url, key, body) =
            (app.client.clone(), app.url("/api/v1/orders"), app.owner_key.clone(), body.clone());
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("idempotency-key", "slow")
                .body(body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, text) = app.raw(&app.owner_key, "POST", "/api/v1/orders", Some(body.clone()), Some("slow")).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("idempotency_key_in_flight"));
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(first.await.unwrap(), 201);
    let (status, _) = app.raw(&app.owner_key, "POST", "/api/v1/orders", Some(body), Some("slow")).await;
    assert_eq!(status, 201, "after the first finished, the replay returns its response");
    assert_eq!(counts(&app).await.1, 1);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_named_and_writes_nothing() {
    let app = TestApp::spawn().await;
    customer(&app, "c1").await;
    let before = counts(&app).await;
    let order = |patch: fn(&mut Value)| {
        let mut body = order_body("pos-x", "c1");
        patch(&mut body);
        body.to_string()
    };
    // (resource, what, body, status, code, field)
    type Case<'a> = (&'a str, &'a str, String, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("orders", "malformed", "{\"external_id\": ".into(), 400, "malformed_json", None),
        ("orders", "unknown field", order(|b| b["colour"] = json!("red")), 422, "unknown_field", Some("colour")),
        (
            "orders",
            "wrong type",
            order(|b| b["lines"][0]["quantity"] = json!("two")),
            422,
            "invalid_field",
            Some("lines[0].quantity"),
        ),
        (
            "orders",
            "negative quantity",
            order(|b| b["lines"][1]["quantity"] = json!(-1)),
            422,
            "invalid_field",
            Some("lines[1].quantity"),
        ),
        (
            "orders",
            "negative price",
            order(|b| b["lines"][0]["unit_price_minor"] = json!(-5)),
            422,
            "invalid_field",
            Some("lines[0].unit_price_minor"),
        ),
        ("orders", "unknown currency", order(|b| b["currency"] = json!("EUX")), 422, "invalid_field", Some("currency")),
        (
            "orders",
            "a date that does not exist",
            order(|b| b["placed_at"] = json!("2026-02-30T10:00:00Z")),
            422,
            "invalid_field",
            Some("placed_at"),
        ),
        ("orders", "no lines", order(|b| b["lines"] = json!([])), 422, "invalid_field", Some("lines")),
        (
            "orders",
            "missing field",
            order(|b| {
                b.as_object_mut().unwrap().remove("currency");
            }),
            422,
            "invalid_field",
            Some("currency"),
        ),
        (
            "orders",
            "unknown customer",
            order(|b| b["customer_external_id"] = json!("nobody")),
            404,
            "not_found",
            Some("customer_external_id"),
        ),
        (
            "orders",
            "bad customer id",
            order(|b| {
                b.as_object_mut().unwrap().remove("customer_external_id");
                b["customer_id"] = json!("ord_1");
            }),
            422,
            "invalid_field",
            Some("customer_id"),
        ),
        (
            "orders",
            "oversized body",
            format!("{{\"external_id\": \"{}\"}}", "x".repeat(2 << 20)),
            413,
            "body_too_large",
            None,
        ),
        (
            "customers",
            "bad e-mail",
            json!({"email": "not-an-address"}).to_string(),
            422,
            "invalid_field",
            Some("email"),
        ),
        (
            "customers",
            "bad birthday",
            json!({"birthday": "1990-02-30"}).to_string(),
            422,
            "invalid_field",
            Some("birthday"),
        ),
        (
            "customers",
            "bad time zone",
            json!({"time_zone": "Mars/Olympus"}).to_string(),
            422,
            "invalid_field",
            Some("time_zone"),
        ),
        (
            "customers",
            "wrong consent type",
            json!({"marketing_consent": {"granted": "yes"}}).to_string(),
            422,
            "invalid_field",
            Some("marketing_consent.granted"),
        ),
    ];
    for (resource, what, body, status, code, field) in cases {
        let (got, text) = app.raw(&app.owner_key, "POST", &format!("/api/v1/{resource}"), Some(body), None).await;
        let problem: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(
            (got, problem["code"].as_str(), problem["field"].as_str()),
            (status, Some(code), field),
            "{what}: {text}"
        );
        assert_eq!(problem["status"], json!(status), "{what}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
    }
    let response =
        app.client.post(app.url("/api/v1/orders")).bearer_auth(&app.owner_key).body("{}").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(counts(&app).await, before, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn export_and_erase_a_customer() {
    let app = TestApp::spawn().await;
    let id = customer(&app, "c1").await;
    app.call("POST", "/api/v1/orders", Some(order_body("pos-1", "c1"))).await;
    let (status, export) = app.call("GET", &format!("/api/v1/customers/{id}/export"), None).await;
    assert_eq!(
        (status, export["customer"]["email"].as_str(), export["orders"].as_array().unwrap().len()),
        (200, Some("c1@example.com"), 1)
    );
    let (status, erased) = app.call("POST", &format!("/api/v1/customers/{id}/erase"), None).await;
    assert_eq!(status, 200);
    assert!(
        erased["email"].is_null()
            && erased["name"].is_null()
            && erased["external_id"].is_null()
            && !erased["erased_at"].is_null()
    );
    let (_, export) = app.call("GET", &format!("/api/v1/customers/{id}/export"), None).await;
    assert_eq!(export["orders"][0]["total"]["amount_minor"], 950, "orders stay so totals stay right");
    assert!(!export.to_string().contains("c1@example.com"));
    app.stop().await;
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_over_the_api() {
    let app = TestApp::spawn().await;
    let (status, created) = app.call("POST", "/api/v1/keys", Some(json!({"name": "till-2", "role": "cashier"}))).await;
    assert_eq!(status, 201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (status, _) = app.call_as(&secret, "GET", "/api/v1/customers", None, None).await;
    assert_eq!(status, 200);
    let (_, listed) = app.call("GET", "/api/v1/keys", None).await;
    assert!(!listed.to_string().contains(&secret), "listings never show secrets");
    let prefix = created["prefix"].as_str().unwrap();
    let (status, _) = app.call("POST", &format!("/api/v1/keys/{prefix}/revoke"), None).await;
    assert_eq!(status, 200);
    let (status, _) = app.call_as(&secret, "GET", "/api/v1/customers", None, None).await;
    assert_eq!(status, 401);
    let (status, body) = app.call("POST", "/api/v1/keys", Some(json!({"name": "x", "role": "root"}))).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("role")));
    app.stop().await;
}

#[tokio::test]
async fn openapi_health_and_metrics() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    for route in ROUTES {
        assert!(
            doc["paths"][route.path][route.method.to_ascii_lowercase()].is_object(),
            "{} {} undocumented",
            route.method,
            route.path
        );
    }
    assert_eq!(app.call("GET", "/healthz", None).await.0, 200);
    let (status, ready) = app.call("GET", "/readyz", None).await;
    assert_eq!((status, ready["database"].as_str()), (200, Some("sqlite")));
    customer(&app, "c1").await;
    let (status, metrics) = app.raw("", "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("regulars_http_requests_total{method=\"POST\",route=\"/api/v1/customers\",status=\"201\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("regulars_store_commit_batch_size_count"), "{metrics}");
    assert!(metrics.contains("regulars_http_request_duration_seconds_bucket"), "{metrics}");
    let (status, body) = app.call("GET", "/api/v1/nothing", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = app.call("DELETE", "/api/v1/orders", None).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_works_the_same_on_postgres() {
    let app = TestApp::spawn_postgres().await;
    customer(&app, "c1").await;
    let body = order_body("pos-1", "c1").to_string();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (client, url, key, body) =
                (app.client.clone(), app.url("/api/v1/orders"), app.owner_key.clone(), body.clone());
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(key)
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("k{i}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap()["id"].clone())
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert!(status == 201 || status == 200);
        created += usize::from(status == 201);
        ids.insert(id.to_string());
    }
    assert_eq!((created, ids.len()), (1, 1), "eight concurrent posts of one order make one order");
    let (_, ready) = app.call("GET", "/readyz", None).await;
    assert_eq!(ready["database"], "postgres");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_snapshot_and_endpoints() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call("GET", "/api/v1/analytics/summary", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "no snapshot yet: {body}");
    let end = regulars_testkit::test_now().date_naive();
    let demo = regulars_demo::orders(regulars_demo::DemoConfig::new(3, 400, end)).unwrap();
    let written = app.db.store.import_orders(demo.collect(), regulars_testkit::test_now()).await.unwrap();
    let (status, refreshed) = app.call("POST", "/api/v1/analytics/snapshot", None).await;
    assert_eq!(status, 201, "{refreshed}");
    assert_eq!(refreshed["orders"].as_u64(), Some(written.orders_created));
    let (status, summary) = app.call("GET", "/api/v1/analytics/summary", None).await;
    assert_eq!(status, 200);
    assert_eq!(summary["snapshot"]["as_of"], end.to_string());
    assert_eq!(summary["customers"], 400);
    let r = summary["models"]["bg_nbd"]["params"]["r"].as_f64().expect("a fitted BG/NBD");
    assert!(r.is_finite() && r > 0.0);
    let (_, segments) = app.call("GET", "/api/v1/analytics/segments", None).await;
    let counted: u64 = segments["segments"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(counted, 400, "every customer is in one segment");
    let (_, cohorts) = app.call("GET", "/api/v1/analytics/cohorts", None).await;
    assert_eq!(cohorts["cohorts"][0]["retention"][0], 1.0);
    let (_, risk) = app.call("GET", "/api/v1/analytics/at-risk?limit=10", None).await;
    let values: Vec<f64> =
        risk["items"].as_array().unwrap().iter().map(|i| i["value_at_risk_minor"].as_f64().unwrap()).collect();
    assert_eq!(values.len(), 10);
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "ordered by value at risk: {values:?}");
    let top = risk["items"][0]["customer_id"].as_str().unwrap();
    let (status, card) = app.call("GET", &format!("/api/v1/customers/{top}/predictions"), None).await;
    assert_eq!((status, &card["figures"]["customer_id"]), (200, &json!(top)));
    let p = card["figures"]["probability_alive"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    let segment = risk["items"][0]["segment"].as_str().unwrap().replace(' ', "%20").replace('\'', "%27");
    let (status, by_segment) = app.call("GET", &format!("/api/v1/analytics/metrics?segment={segment}"), None).await;
    assert_eq!(status, 200, "{by_segment}");
    assert!(!by_segment["periods"].as_array().unwrap().is_empty());
    let (status, all) = app.call("GET", "/api/v1/analytics/metrics", None).await;
    assert_eq!((status, all["segment"].is_null()), (200, true));
    let (status, bad) = app.call("GET", "/api/v1/analytics/metrics?segment=nobody", None).await;
    assert_eq!((status, bad["field"].as_str()), (422, Some("segment")));
    app.stop().await;
}

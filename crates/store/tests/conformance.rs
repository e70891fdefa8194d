//! The store conformance suite: every test runs against SQLite and against PostgreSQL.
//! The PostgreSQL half needs `REGULARS_TEST_POSTGRES_URL` (set by `scripts/test`); without it, it fails.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use regulars_core::order::CustomerRef;
use regulars_core::{
    Consent, Currency, CustomerDraft, CustomerPatch, Email, ExternalId, ImportedOrder, ImportedRefund, OrderDraft,
    OrderLine, Phone, ProductDraft, Quantity, RefundDraft, RefundDraftKind, RefundLine, Role, Sku,
};
use regulars_store::{CustomerLookup, Idempotency, Store, StoreError};
use regulars_testkit::TestDb;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
}

fn eur() -> Currency {
    Currency::parse("currency", "EUR").unwrap()
}

fn ext(s: &str) -> ExternalId {
    ExternalId::parse("external_id", s).unwrap()
}

fn customer(external_id: &str) -> CustomerDraft {
    CustomerDraft {
        external_id: Some(ext(external_id)),
        email: Some(Email::parse("email", &format!("{external_id}@example.com")).unwrap()),
        name: Some(format!("Customer {external_id}")),
        consent: Consent { marketing: true, recorded_at: Some(at(1)), source: Some("till".into()) },
        attributes: BTreeMap::from([("favourite".to_owned(), "flat white".to_owned())]),
        ..CustomerDraft::default()
    }
}

fn line(sku: &str, quantity: i64, unit_price_minor: i64) -> OrderLine {
    OrderLine::new(
        Sku::parse("sku", sku).unwrap(),
        None,
        Quantity::new("quantity", quantity).unwrap(),
        unit_price_minor,
        0,
    )
    .unwrap()
}

fn order(external_id: &str, customer: CustomerRef, lines: Vec<OrderLine>) -> OrderDraft {
    OrderDraft::new(Some(ext(external_id)), customer, at(2), eur(), lines).unwrap()
}

regulars_testkit::on_both_databases!(
    customers_round_trip_and_page,
    a_taken_external_id_is_refused,
    orders_are_recorded_once_per_external_id,
    concurrent_orders_with_one_external_id_make_one_order,
    refunds_never_return_more_than_was_bought,
    imports_are_idempotent,
    a_later_export_adds_the_refunds_of_imported_orders,
    idempotent_responses_commit_with_their_write,
    a_failed_write_changes_nothing_and_spares_its_neighbours,
    api_keys_authenticate_until_revoked,
    erasure_keeps_orders_and_drops_personal_fields,
    migrations_apply_once,
    snapshots_keep_the_latest_two,
);

async fn customers_round_trip_and_page(db: &TestDb) {
    let s = &db.store;
    let created = s.create_customer(customer("c1"), at(1), None).await.unwrap();
    assert_eq!(s.customer(created.id).await.unwrap().as_ref(), Some(&created));
    assert_eq!(created.attributes["favourite"], "flat white");
    assert_eq!(created.consent.source.as_deref(), Some("till"));
    let patch = CustomerPatch {
        phone: Some(Some(Phone::parse("phone", "+49 30 1234567").unwrap())),
        name: Some(None),
        ..CustomerPatch::default()
    };
    let updated = s.update_customer(created.id, patch, None).await.unwrap();
    assert_eq!(updated.phone.as_ref().unwrap().as_str(), "+49301234567");
    assert_eq!(updated.name, None);
    assert_eq!(updated.email, created.email);
    for i in 2..=5 {
        s.create_customer(customer(&format!("c{i}")), at(1), None).await.unwrap();
    }
    let first = s.customers(None, 2).await.unwrap();
    let second = s.customers(Some(first[1].id), 2).await.unwrap();
    let third = s.customers(Some(second[1].id), 2).await.unwrap();
    let ids: Vec<String> =
        first.iter().chain(&second).chain(&third).map(|c| c.external_id.clone().unwrap().to_string()).collect();
    assert_eq!(ids, ["c1", "c2", "c3", "c4", "c5"]);
    let by_email =
        s.find_customers(CustomerLookup::Email(Email::parse("e", "C3@Example.com").unwrap()), 10).await.unwrap();
    assert_eq!(by_email.len(), 1);
    assert_eq!(by_email[0].external_id, Some(ext("c3")));
    let by_phone =
        s.find_customers(CustomerLookup::Phone(Phone::parse("p", "+49301234567").unwrap()), 10).await.unwrap();
    assert_eq!(by_phone[0].id, created.id);
    let by_ext = s.find_customers(CustomerLookup::ExternalId(ext("c5")), 10).await.unwrap();
    assert_eq!(by_ext.len(), 1);
}

async fn a_taken_external_id_is_refused(db: &TestDb) {
    let s = &db.store;
    let first = s.create_customer(customer("dup"), at(1), None).await.unwrap();
    match s.create_customer(customer("dup"), at(1), None).await {
        Err(StoreError::AlreadyExists { field, existing, .. }) => {
            assert_eq!(field, "external_id");
            assert_eq!(existing, first.id.to_string());
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(s.counts().await.unwrap().customers, 1);
}

async fn orders_are_recorded_once_per_external_id(db: &TestDb) {
    let s = &db.store;
    let c = s.create_customer(customer("c1"), at(1), None).await.unwrap();
    let draft = order("o1", CustomerRef::External(ext("c1")), vec![line("LATTE", 2, 350), line("CROISSANT", 1, 220)]);
    let (first, created) = s.record_order(draft.clone(), at(2), None).await.unwrap();
    assert!(created);
    assert_eq!(first.total_minor, 920);
    assert_eq!(first.customer_id, c.id);
    let (again, created) = s.record_order(draft, at(3), None).await.unwrap();
    assert!(!created);
    assert_eq!(again, first);
    assert_eq!(s.order(first.id).await.unwrap(), Some(first.clone()));
    let second = order("o2", CustomerRef::Id(c.id), vec![line("LATTE", 1, 350)]);
    s.record_order(second, at(2), None).await.unwrap();
    let orders = s.orders_of_customer(c.id, None, 10).await.unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(s.orders_of_customer(c.id, Some(orders[0].id), 10).await.unwrap().len(), 1);
    let products = s.products(None, 10).await.unwrap();
    assert_eq!(products.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(), ["LATTE", "CROISSANT"]);
    let unknown = order("o3", CustomerRef::External(ext("nobody")), vec![line("LATTE", 1, 350)]);
    match s.record_order(unknown, at(2), None).await {
        Err(StoreError::NotFound { field, .. }) => assert_eq!(field, "customer_external_id"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(s.counts().await.unwrap().orders, 2);
}

async fn concurrent_orders_with_one_external_id_make_one_order(db: &TestDb) {
    let s = &db.store;
    s.create_customer(customer("c1"), at(1), None).await.unwrap();
    let draft = order("same", CustomerRef::External(ext("c1")), vec![line("LATTE", 1, 350)]);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, d) = (s.clone(), draft.clone());
            tokio::spawn(async move { s.record_order(d, at(2), None).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (o, c) = t.await.unwrap();
        created += usize::from(c);
        ids.insert(o.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(s.counts().await.unwrap().orders, 1);
}

async fn refunds_never_return_more_than_was_bought(db: &TestDb) {
    let s = &db.store;
    s.create_customer(customer("c1"), at(1), None).await.unwrap();
    let draft = order("o1", CustomerRef::External(ext("c1")), vec![line("BEANS", 3, 1000), line("MUG", 1, 800)]);
    let (o, _) = s.record_order(draft, at(2), None).await.unwrap();
    let partial = |ext_id: &str, quantity| RefundDraft {
        external_id: Some(ext(ext_id)),
        order_id: o.id,
        refunded_at: at(3),
        reason: Some("broken".into()),
        kind: RefundDraftKind::Lines(vec![RefundLine { line: 0, quantity, amount_minor: 0 }]),
    };
    let (r1, created) = s.record_refund(partial("r1", 2), at(3), None).await.unwrap();
    assert!(created);
    assert_eq!(r1.amount_minor, 2000);
    let (replayed, created) = s.record_refund(partial("r1", 2), at(3), None).await.unwrap();
    assert!(!created);
    assert_eq!(replayed, r1);
    match s.record_refund(partial("r2", 2), at(3), None).await {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "lines[0].quantity"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let whole = RefundDraft { external_id: Some(ext("r3")), kind: RefundDraftKind::Whole, ..partial("x", 1) };
    let (r3, _) = s.record_refund(whole.clone(), at(3), None).await.unwrap();
    assert_eq!(r3.amount_minor, 1800);
    let after = s.order(o.id).await.unwrap().unwrap();
    assert_eq!(after.refunded_minor, after.total_minor);
    let nothing_left = RefundDraft { external_id: Some(ext("r4")), ..whole };
    assert!(matches!(s.record_refund(nothing_left, at(3), None).await, Err(StoreError::Invalid(_))));
    assert_eq!(s.refunds_of_order(o.id).await.unwrap().len(), 2);
}

fn imported(line_number: u64, order_id: &str, customer_id: &str, refund: bool) -> ImportedOrder {
    let draft =
        order(order_id, CustomerRef::External(ext(customer_id)), vec![line("CD", 2, 1199), line("DVD", 1, 1999)]);
    ImportedOrder {
        line_number,
        customer: customer(customer_id),
        products: vec![ProductDraft {
            sku: Sku::parse("sku", "CD").unwrap(),
            name: "Compact disc".into(),
            category: Some("music".into()),
            price: None,
        }],
        refunds: if refund {
            vec![ImportedRefund {
                external_id: ext(&format!("{order_id}-refund")),
                refunded_at: at(5),
                lines: vec![RefundLine { line: 0, quantity: 1, amount_minor: 0 }],
            }]
        } else {
            Vec::new()
        },
        order: draft,
    }
}

async fn imports_are_idempotent(db: &TestDb) {
    let s = &db.store;
    let batch = || vec![imported(2, "o1", "a", false), imported(3, "o2", "a", true), imported(5, "o3", "b", false)];
    let first = s.import_orders(batch(), at(10)).await.unwrap();
    assert_eq!(
        (first.orders_created, first.customers_created, first.refunds_created, first.lines_created),
        (3, 2, 1, 6)
    );
    let second = s.import_orders(batch(), at(11)).await.unwrap();
    assert_eq!(
        (second.orders_created, second.orders_existing, second.customers_created, second.refunds_created),
        (0, 3, 0, 0)
    );
    let counts = s.counts().await.unwrap();
    assert_eq!((counts.customers, counts.orders), (2, 3));
    let a = s.find_customers(CustomerLookup::ExternalId(ext("a")), 1).await.unwrap().remove(0);
    assert_eq!(a.first_seen_at, at(2));
    let orders = s.orders_of_customer(a.id, None, 10).await.unwrap();
    assert_eq!(orders[1].refunded_minor, 1199);
    let cd = s.products(None, 10).await.unwrap().into_iter().find(|p| p.sku.as_str() == "CD").unwrap();
    assert_eq!(cd.category.as_deref(), Some("music"));
}

async fn a_later_export_adds_the_refunds_of_imported_orders(db: &TestDb) {
    let s = &db.store;
    s.import_orders(vec![imported(2, "o1", "a", false)], at(10)).await.unwrap();
    // The next export has the same order, refunded meanwhile.
    let later = s.import_orders(vec![imported(2, "o1", "a", true)], at(11)).await.unwrap();
    assert_eq!((later.orders_created, later.orders_existing, later.refunds_created), (0, 1, 1));
    let again = s.import_orders(vec![imported(2, "o1", "a", true)], at(12)).await.unwrap();
    assert_eq!(again.refunds_created, 0);
    let a = s.find_customers(CustomerLookup::ExternalId(ext("a")), 1).await.unwrap().remove(0);
    let order = s.orders_of_customer(a.id, None, 10).await.unwrap().remove(0);
    assert_eq!(order.refunded_minor, 1199);
    let refunds = s.refunds_of_order(order.id).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].lines, [RefundLine { line: 0, quantity: 1, amount_minor: 1199 }]);
}

fn idem<T>(key: &str, body: &'static str) -> Option<Idempotency<T>> {
    Some(Idempotency {
        scope: "key-1".into(),
        key: key.into(),
        request_hash: "h1".into(),
        render: Box::new(move |_| (201, body.into())),
    })
}

async fn idempotent_responses_commit_with_their_write(db: &TestDb) {
    let s = &db.store;
    s.create_customer(customer("c1"), at(1), idem("k1", "{\"first\":true}")).await.unwrap();
    let stored = s.idempotent_response("key-1", "k1").await.unwrap().unwrap();
    assert_eq!((stored.status, stored.body.as_str(), stored.request_hash.as_str()), (201, "{\"first\":true}", "h1"));
    assert!(s.idempotent_response("key-2", "k1").await.unwrap().is_none(), "keys are scoped to their caller");
    // A second write under the same key loses the race and is rolled back with its effect.
    assert!(matches!(
        s.create_customer(customer("c2"), at(1), idem("k1", "{}")).await,
        Err(StoreError::IdempotencyRace)
    ));
    assert_eq!(s.counts().await.unwrap().customers, 1);
    // A failed write stores no response.
    assert!(s.create_customer(customer("c1"), at(1), idem("k2", "{}")).await.is_err());
    assert!(s.idempotent_response("key-1", "k2").await.unwrap().is_none());
}

async fn a_failed_write_changes_nothing_and_spares_its_neighbours(db: &TestDb) {
    let s = &db.store;
    s.create_customer(customer("c1"), at(1), None).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                // Every other order names a customer that does not exist.
                let who = if i % 2 == 0 { "c1" } else { "ghost" };
                s.record_order(
                    order(&format!("o{i}"), CustomerRef::External(ext(who)), vec![line("TEA", 1, 300)]),
                    at(2),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap().is_ok());
    }
    assert_eq!(ok, 20);
    assert_eq!(s.counts().await.unwrap().orders, 20);
}

async fn api_keys_authenticate_until_revoked(db: &TestDb) {
    let s = &db.store;
    let new = s.create_api_key("till-1", Role::Cashier, at(1)).await.unwrap();
    assert!(new.secret.starts_with(&new.key.prefix));
    let found = s.authenticate(&new.secret).await.unwrap().unwrap();
    assert_eq!((found.role, found.name.as_str()), (Role::Cashier, "till-1"));
    let mut wrong = new.secret.clone();
    wrong.replace_range(wrong.len() - 1.., if wrong.ends_with('0') { "1" } else { "0" });
    assert!(s.authenticate(&wrong).await.unwrap().is_none());
    assert!(s.authenticate("rgl_nonsense").await.unwrap().is_none());
    let revoked = s.revoke_api_key(&new.key.prefix, at(2)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(2)));
    assert!(s.authenticate(&new.secret).await.unwrap().is_none());
    assert_eq!(s.api_keys().await.unwrap().len(), 1);
    assert!(s.revoke_api_key("rgl_000000000000", at(2)).await.unwrap().is_none());
}

async fn erasure_keeps_orders_and_drops_personal_fields(db: &TestDb) {
    let s = &db.store;
    let render_with_id = |c: &regulars_core::Customer| {
        (201, format!("{{\"email\":\"c1@example.com\",\"id\":\"{}\",\"name\":\"x\"}}", c.id))
    };
    let idem = Idempotency {
        scope: "k".into(),
        key: "create-c1".into(),
        request_hash: "h".into(),
        render: Box::new(render_with_id),
    };
    let c = s.create_customer(customer("c1"), at(1), Some(idem)).await.unwrap();
    assert!(s.idempotent_response("k", "create-c1").await.unwrap().is_some());
    s.record_order(order("o1", CustomerRef::Id(c.id), vec![line("TEA", 2, 300)]), at(2), None).await.unwrap();
    let export = s.export_customer(c.id).await.unwrap().unwrap();
    assert_eq!((export.orders.len(), export.customer.email.is_some()), (1, true));
    let erased = s.erase_customer(c.id, at(3), None).await.unwrap();
    assert_eq!(erased.erased_at, Some(at(3)));
    assert!(
        s.idempotent_response("k", "create-c1").await.unwrap().is_none(),
        "stored responses with personal data are gone"
    );
    assert!(
        erased.email.is_none() && erased.name.is_none() && erased.external_id.is_none() && erased.attributes.is_empty()
    );
    let again = s.erase_customer(c.id, at(4), None).await.unwrap();
    assert_eq!(again.erased_at, Some(at(3)), "erasing twice keeps the first time");
    let orders = s.orders_of_customer(c.id, None, 10).await.unwrap();
    assert_eq!(orders[0].total_minor, 600);
    let replay = order("o1", CustomerRef::External(ext("c1")), vec![line("TEA", 2, 300)]);
    let (existing, created) = s.record_order(replay, at(5), None).await.unwrap();
    assert_eq!((existing.id, created), (orders[0].id, false), "a retried order returns the existing one");
    assert!(
        s.find_customers(CustomerLookup::Email(Email::parse("e", "c1@example.com").unwrap()), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(s.update_customer(c.id, CustomerPatch::default(), None).await, Err(StoreError::NotFound { .. })));
}

async fn migrations_apply_once(db: &TestDb) {
    assert!(db.store.migrate().await.unwrap().is_empty());
    let again = Store::open(&db.url).await.unwrap();
    assert!(again.migrate().await.unwrap().is_empty());
    again.close().await;
}

fn figures(customer: regulars_core::CustomerId, value_at_risk: f64) -> regulars_store::CustomerFigures {
    regulars_store::CustomerFigures {
        customer_id: customer,
        frequency: 3,
        total_spend_minor: 4200,
        last_purchase: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
        probability_alive: Some(0.5),
        expected_purchases: Some(1.25),
        expected_value: None,
        clv: None,
        segment: "at risk".into(),
        rfm: "253".into(),
        median_gap_days: Some(7.0),
        overdue: true,
        value_at_risk,
    }
}

async fn snapshots_keep_the_latest_two(db: &TestDb) {
    let s = &db.store;
    let a = s.create_customer(customer("a"), at(1), None).await.unwrap();
    let b = s.create_customer(customer("b"), at(1), None).await.unwrap();
    s.record_order(order("o1", CustomerRef::Id(a.id), vec![line("TEA", 2, 300)]), at(2), None).await.unwrap();
    let purchases = s.purchases().await.unwrap();
    assert_eq!((purchases.len(), purchases[0].net_minor, purchases[0].placed_at), (1, 600, at(2)));
    assert!(s.latest_snapshot().await.unwrap().is_none());
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
    let first = s.save_snapshot(at(3), as_of, "{}".into(), vec![figures(a.id, 10.0)]).await.unwrap();
    let second =
        s.save_snapshot(at(4), as_of, "{}".into(), vec![figures(a.id, 10.0), figures(b.id, 30.0)]).await.unwrap();
    let third =
        s.save_snapshot(at(5), as_of, "{\"n\":3}".into(), vec![figures(a.id, 20.0), figures(b.id, 5.0)]).await.unwrap();
    let latest = s.latest_snapshot().await.unwrap().unwrap();
    assert_eq!(
        (latest.id, latest.report_json.as_str(), latest.as_of, latest.computed_at),
        (third, "{\"n\":3}", as_of, at(5))
    );
    let risk = s.at_risk(third, 10).await.unwrap();
    assert_eq!(risk.iter().map(|f| f.customer_id).collect::<Vec<_>>(), [a.id, b.id]);
    assert_eq!(risk[0], figures(a.id, 20.0));
    assert_eq!(s.customer_figures(second, b.id).await.unwrap().unwrap().value_at_risk, 30.0);
    assert!(s.customer_figures(first, a.id).await.unwrap().is_none(), "older snapshots are dropped");
}

/// Imported batches commit without waiting for the disk on SQLite; `sync` puts everything committed
/// into the database file itself. A copy of that file alone, without its WAL, holds the whole import,
/// and API writes queued between import batches still commit (in transactions of their own).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_sync_the_sqlite_file_alone_holds_the_import() {
    let db = TestDb::sqlite().await;
    let s = db.store.clone();
    let imports = (0..8).map(|i| {
        let s = s.clone();
        tokio::spawn(async move {
            let batch = (0..50).map(|j| imported(2, &format!("o{i}-{j}"), &format!("c{i}-{}", j % 7), j % 5 == 0));
            s.import_orders(batch.collect(), at(10)).await.unwrap()
        })
    });
    let api = (0..8).map(|i| {
        let s = s.clone();
        tokio::spawn(async move { s.create_customer(customer(&format!("api{i}")), at(1), None).await.unwrap() })
    });
    let (imports, api) = (futures_util::future::join_all(imports).await, futures_util::future::join_all(api).await);
    let orders: u64 = imports.into_iter().map(|r| r.unwrap().orders_created).sum();
    assert_eq!((orders, api.len()), (400, 8));
    s.sync().await.unwrap();

    let path = db.url.strip_prefix("sqlite://").unwrap();
    let copy = tempfile::tempdir().unwrap();
    let alone = copy.path().join("alone.db");
    std::fs::copy(path, &alone).unwrap();
    let reopened = Store::open(&format!("sqlite://{}", alone.display())).await.unwrap();
    let counts = reopened.counts().await.unwrap();
    assert_eq!((counts.orders, counts.customers), (400, 8 * 7 + 8));
    reopened.close().await;
    db.store.close().await;
}

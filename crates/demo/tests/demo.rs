//! The demo shop: deterministic, plausible, and read back exactly by the generic reader.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate, Timelike};
use regulars_core::{CustomerRef, ImportedOrder};
use regulars_demo::{DemoConfig, write_csv};
use regulars_ingest::{Format, OrderReader, ReadOptions};

fn config(seed: u64, customers: u64) -> DemoConfig {
    DemoConfig::new(seed, customers, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap())
}

fn generate(config: DemoConfig) -> Vec<ImportedOrder> {
    regulars_demo::orders(config).unwrap().collect()
}

fn customer(order: &ImportedOrder) -> &str {
    match &order.order.customer {
        CustomerRef::External(id) => id.as_str(),
        CustomerRef::Id(_) => unreachable!(),
    }
}

#[test]
fn same_seed_same_shop_and_customers_do_not_depend_on_the_count() {
    let a = generate(config(7, 300));
    assert_eq!(a, generate(config(7, 300)));
    assert_ne!(a, generate(config(8, 300)));
    let fewer = generate(config(7, 100));
    assert_eq!(&a[..fewer.len()], &fewer[..], "customer i is the same whatever the number of customers");
}

#[test]
fn the_generic_csv_reads_back_exactly() {
    let orders = generate(config(3, 400));
    let mut csv = Vec::new();
    let summary = write_csv(config(3, 400), &mut csv).unwrap();
    assert_eq!(summary.orders, orders.len() as u64);
    let options = ReadOptions { format: Format::Generic, ..ReadOptions::default() };
    let mut reader = OrderReader::from_reader(std::io::Cursor::new(csv), &options).unwrap();
    let read: Vec<ImportedOrder> = (&mut reader).map(|r| r.expect("every row reads")).collect();
    assert_eq!(reader.finish().unwrap().rows, summary.lines);
    assert_eq!(read.len(), orders.len());
    for (mut back, original) in read.into_iter().zip(&orders) {
        // The CSV carries no line numbers or consent source; the reader records its own.
        back.line_number = original.line_number;
        back.customer.consent.source = original.customer.consent.source.clone();
        assert_eq!(&back, original);
    }
}

#[test]
fn the_shop_looks_like_a_shop() {
    let config = config(11, 2_000);
    let (start, end) = (config.start(), config.end);
    let orders = generate(config);
    let mut per_customer: HashMap<&str, Vec<&ImportedOrder>> = HashMap::new();
    for order in &orders {
        per_customer.entry(customer(order)).or_default().push(order);
    }
    assert_eq!(per_customer.len(), 2_000, "every customer buys at least once");
    let one_timers = per_customer.values().filter(|o| o.len() == 1).count();
    assert!(one_timers > 2_000 * 3 / 10, "many one-time buyers: {one_timers}");
    // Regulars: someone who always comes on the same weekdays, many times.
    let regulars = per_customer
        .values()
        .filter(|o| o.len() >= 20)
        .filter(|o| {
            let mut days: Vec<u32> = o.iter().map(|x| x.order.placed_at.weekday().num_days_from_monday()).collect();
            days.sort_unstable();
            days.dedup();
            days.len() <= 3
        })
        .count();
    assert!(regulars > 40, "regulars with a weekly rhythm: {regulars}");
    let refunded = orders.iter().filter(|o| !o.refunds.is_empty()).count() as f64 / orders.len() as f64;
    assert!((0.015..0.05).contains(&refunded), "refund share {refunded}");
    let partial = orders
        .iter()
        .filter(|o| {
            o.refunds.iter().any(|r| r.lines.iter().map(|l| l.amount_minor).sum::<i64>() < o.order.total_minor())
        })
        .count();
    assert!(partial > 0, "some refunds are partial");
    for order in &orders {
        let local = order.order.placed_at.with_timezone(&chrono_tz::Europe::Berlin);
        assert!((7..19).contains(&local.hour()), "open hours: {local}");
        assert!(local.date_naive() >= start && local.date_naive() <= end);
    }
    let with_phone = per_customer.values().filter(|o| o[0].customer.phone.is_some()).count();
    assert!((400..1_000).contains(&with_phone), "some phones: {with_phone}");
}

//! Reading every format from files: the real Shopify and CDNOW files in `testdata/`, and constructed
//! fixtures in `tests/fixtures/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use regulars_core::{CustomerRef, ImportedOrder, RefundLine};
use regulars_ingest::{
    Delimiter, Format, IngestError, OrderReader, ReadOptions, ReadSummary, Rejected, SlashDateOrder,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A file of the repository's shared test data; fails with where it looked when missing.
fn testdata(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata").join(relative);
    assert!(path.exists(), "test data not found at {}", path.display());
    path
}

struct Read {
    orders: Vec<ImportedOrder>,
    rejected: Vec<Rejected>,
    summary: ReadSummary,
}

fn read_with(path: &Path, options: &ReadOptions) -> Read {
    let mut reader = OrderReader::open(path, options).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut orders, mut rejected) = (Vec::new(), Vec::new());
    for item in &mut reader {
        match item {
            Ok(order) => orders.push(order),
            Err(r) => rejected.push(r),
        }
    }
    let summary = reader.finish().expect("read to the end");
    Read { orders, rejected, summary }
}

fn read(path: &Path, format: Format) -> Read {
    read_with(path, &ReadOptions { format, ..ReadOptions::default() })
}

fn customer_key(order: &ImportedOrder) -> &str {
    match &order.order.customer {
        CustomerRef::External(id) => id.as_str(),
        CustomerRef::Id(_) => panic!("imports name customers by external id"),
    }
}

fn gzip(path: &Path) -> tempfile_path::TempPath {
    let out = tempfile_path::TempPath::new(&format!("{}.gz", path.file_name().unwrap().to_string_lossy()));
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&out.0).unwrap(), Default::default());
    encoder.write_all(&std::fs::read(path).unwrap()).unwrap();
    encoder.finish().unwrap();
    out
}

/// A file in the target directory's temporary area, removed when dropped.
mod tempfile_path {
    use std::path::PathBuf;

    pub struct TempPath(pub PathBuf);

    impl TempPath {
        pub fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("regulars-ingest-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempPath(dir.join(name))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn cdnow_master_gives_every_customer_day_with_exact_totals() {
    let path = testdata("cdnow/CDNOW_master.txt");
    let result = read(&path, Format::Auto);
    assert!(result.rejected.is_empty(), "{:?}", &result.rejected[..result.rejected.len().min(3)]);
    assert_eq!(result.orders.len(), 67_591);
    assert_eq!(result.summary.rows, 69_659);
    let mut customers: Vec<&str> = result.orders.iter().map(customer_key).collect();
    customers.dedup();
    assert_eq!(customers.len(), 23_570);
    let total: i64 = result.orders.iter().map(|o| o.order.total_minor()).sum();
    assert_eq!(total, sum_of_cents(&path, 3), "the value total equals the file's sum");
    let first = &result.orders[1];
    assert_eq!(first.order.external_id.as_ref().unwrap().as_str(), "cdnow-00002-19970112");
    assert_eq!(first.order.lines[0].quantity.get(), 6);
    assert_eq!(first.order.total_minor(), 8900);
    assert_eq!(first.line_number, 3);
}

#[test]
fn cdnow_sample_gives_2357_customers() {
    let path = testdata("cdnow/CDNOW_sample.txt");
    let result = read(&path, Format::Cdnow);
    assert!(result.rejected.is_empty());
    let mut customers: Vec<&str> = result.orders.iter().map(customer_key).collect();
    customers.dedup();
    assert_eq!(customers.len(), 2_357);
    let total: i64 = result.orders.iter().map(|o| o.order.total_minor()).sum();
    assert_eq!(total, sum_of_cents(&path, 4));
    assert_eq!(result.orders[0].customer.attributes["cdnow_sample_id"], "0001");
}

/// The sum of a whitespace-separated decimal column, in cents, computed independently of the reader.
fn sum_of_cents(path: &Path, column: usize) -> i64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(column))
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(|v| {
            let (whole, cents) = v.split_once('.').unwrap_or((v, "0"));
            whole.parse::<i64>().unwrap() * 100 + format!("{cents:0<2}").parse::<i64>().unwrap()
        })
        .sum()
}

#[test]
fn shopify_real_export_gives_19_orders() {
    let result = read(&testdata("exports/shopify_orders_export.csv"), Format::Auto);
    assert!(result.rejected.is_empty(), "{:?}", result.rejected);
    assert_eq!(result.orders.len(), 19);
    let by_name =
        |n: &str| result.orders.iter().find(|o| o.order.external_id.as_ref().unwrap().as_str() == n).expect("order");
    let first = by_name("shopify-1001");
    assert_eq!(first.order.lines.len(), 4);
    assert_eq!(first.order.total_minor(), 165_995);
    assert_eq!(customer_key(first), "shopify-guest-1001");
    assert_eq!(first.order.placed_at.to_rfc3339(), "2025-05-11T13:55:16+00:00");
    assert_eq!(first.order.lines[0].sku.as_str(), "Gift Card - $10", "an empty SKU becomes the name");
    let russel = by_name("shopify-1008");
    assert_eq!(customer_key(russel), "russel.winfield@example.com");
    assert_eq!(russel.customer.name.as_deref(), Some("Russell Winfield"));
    assert_eq!(russel.customer.phone.as_ref().unwrap().as_str(), "+16135550135");
    assert_eq!(by_name("shopify-1006").order.lines[1].sku.as_str(), "sku-untracked-1");
    // Every order's total is the export's Subtotal.
    for (name, subtotal) in [("shopify-1005", 163_555), ("shopify-1013", 12_759), ("shopify-1016", 995)] {
        assert_eq!(by_name(name).order.total_minor(), subtotal, "{name}");
    }
}

#[test]
fn shopify_refunds_cancellations_and_discounts() {
    let result = read(&fixture("shopify_refunds.csv"), Format::Shopify);
    assert!(result.rejected.is_empty(), "{:?}", result.rejected);
    assert_eq!(result.summary.skipped, 2, "cancelled #2003 and voided #2004");
    let ids: Vec<&str> = result.orders.iter().map(|o| o.order.external_id.as_ref().unwrap().as_str()).collect();
    assert_eq!(ids, ["shopify-2001", "shopify-2002", "shopify-2005"]);
    let refunded = &result.orders[0];
    assert_eq!(refunded.refunds.len(), 1);
    assert_eq!(refunded.refunds[0].external_id.as_str(), "shopify-2001-refund");
    assert_eq!(refunded.refunds[0].lines, vec![RefundLine { line: 0, quantity: 2, amount_minor: 3000 }]);
    assert!(refunded.customer.consent.marketing);
    let partial = &result.orders[1];
    assert_eq!(customer_key(partial), "mia@example.com");
    assert_eq!(partial.order.lines[1].sku.as_str(), "Tea, green loose leaf", "control characters become spaces");
    assert_eq!(
        partial.refunds[0].lines,
        vec![RefundLine { line: 1, quantity: 2, amount_minor: 1000 }],
        "11.00 refunded: two 5.00 items of the last line fit, the 1.00 left matches no item"
    );
    let discounted = &result.orders[2];
    assert_eq!(discounted.order.total_minor(), 2800, "Discount Amount spread over the lines");
    assert!(discounted.customer.phone.is_none(), "an invalid phone is dropped, not fatal");
}

#[test]
fn woocommerce_export() {
    let result = read(&fixture("woocommerce_orders.csv"), Format::Auto);
    assert!(result.rejected.is_empty(), "{:?}", result.rejected);
    assert_eq!(result.summary.skipped, 1, "the cancelled order");
    let ids: Vec<&str> = result.orders.iter().map(|o| o.order.external_id.as_ref().unwrap().as_str()).collect();
    assert_eq!(ids, ["woocommerce-501", "woocommerce-502", "woocommerce-503", "woocommerce-505"]);
    let first = &result.orders[0];
    assert_eq!(customer_key(first), "jonas@example.de");
    assert_eq!(first.customer.name.as_deref(), Some("Jonas Weber"));
    assert_eq!(first.order.lines[1].sku.as_str(), "Paper filters");
    assert_eq!(first.order.lines[1].discount_minor, 60, "2 x 3.00 with a line total of 5.40");
    assert_eq!(first.order.total_minor(), 2490 + 540);
    assert_eq!(customer_key(&result.orders[1]), "woocommerce-guest-502");
    assert_eq!(result.orders[2].refunds[0].lines[0].amount_minor, 5900);
    assert_eq!(customer_key(&result.orders[3]), "woocommerce-customer-7");
    assert_eq!(result.orders[3].order.total_minor(), 2000, "3 items for a line total of 20.00, exactly");
}

#[test]
fn stripe_payments() {
    let result = read(&fixture("stripe_payments.csv"), Format::Auto);
    assert_eq!(result.summary.skipped, 1, "the failed payment");
    assert_eq!(result.orders.len(), 3);
    assert_eq!(result.rejected.len(), 1);
    assert_eq!(result.rejected[0].line_number, 6);
    assert!(result.rejected[0].reason.starts_with("Amount:"), "{}", result.rejected[0].reason);
    let [paid, refunded, partial] = &result.orders[..] else { panic!() };
    assert_eq!(customer_key(paid), "cus_X1");
    assert_eq!(paid.customer.name.as_deref(), Some("Alma Ortiz"));
    assert_eq!(paid.order.total_minor(), 3000);
    assert_eq!(refunded.refunds[0].lines[0].amount_minor, 3000);
    assert_eq!(refunded.refunds[0].refunded_at.to_rfc3339(), "2025-05-03T12:00:00+00:00");
    assert_eq!(customer_key(partial), "ben@example.com");
    assert_eq!(partial.order.placed_at.to_rfc3339(), "2025-05-08T08:00:00+00:00", "Unix seconds");
    assert_eq!(partial.order.total_minor(), 5000);
    assert_eq!(partial.refunds[0].lines, vec![RefundLine { line: 1, quantity: 1, amount_minor: 2000 }]);
}

#[test]
fn generic_reads_customers_lines_and_refunds() {
    let result = read(&fixture("generic_small.csv"), Format::Auto);
    assert!(result.rejected.is_empty(), "{:?}", result.rejected);
    assert_eq!(result.orders.len(), 3);
    let first = &result.orders[0];
    assert_eq!(first.customer.email.as_ref().unwrap().as_str(), "ana@example.com");
    assert_eq!(first.customer.phone.as_ref().unwrap().as_str(), "+49301234567");
    assert_eq!(first.customer.time_zone.as_deref(), Some("Europe/Berlin"));
    assert!(first.customer.consent.marketing);
    assert_eq!(first.order.lines.len(), 2);
    assert_eq!(first.order.total_minor(), 700 - 50 + 220);
    assert_eq!(first.products[1].name, "Croissant, butter");
    assert_eq!(first.products[1].category.as_deref(), Some("Bakery"));
    assert_eq!(first.refunds[0].external_id.as_str(), "A-1-refund");
    assert_eq!(first.refunds[0].lines, vec![RefundLine { line: 1, quantity: 1, amount_minor: 220 }]);
    assert_eq!(customer_key(&result.orders[1]), "bo@example.com", "the e-mail when there is no customer id");
    assert_eq!(result.orders[2].order.placed_at.to_rfc3339(), "2024-01-05T00:00:00+00:00", "day first by default");
}

#[test]
fn bad_rows_are_rejected_with_line_and_column() {
    let result = read(&fixture("generic_bad_rows.csv"), Format::Generic);
    let got: Vec<(u64, &str)> = result.rejected.iter().map(|r| (r.line_number, r.reason.as_str())).collect();
    let expected_starts = [
        (3, "sku: must not be empty"),
        (4, "quantity: must be at least 1, got -2"),
        (5, "currency: unknown currency \"EUX\""),
        (6, "placed_at: \"2023-02-30\" is not a date that exists"),
        (7, "unit_price: \"abc\" is not an amount in EUR"),
        (9, "unit_price: must not be negative"),
        (10, "unit_price: \"3.505\" is not an amount in EUR"),
        (11, "order_id: must not be empty"),
    ];
    assert_eq!(got.len(), expected_starts.len(), "{got:?}");
    for ((line, reason), (expected_line, start)) in got.iter().zip(expected_starts) {
        assert_eq!(*line, expected_line, "{reason}");
        assert!(reason.starts_with(start), "line {line}: {reason:?} should start with {start:?}");
    }
    let ok: Vec<&str> = result.orders.iter().map(|o| o.order.external_id.as_ref().unwrap().as_str()).collect();
    assert_eq!(ok, ["B-1", "B-9"]);
    assert_eq!(result.summary, ReadSummary { rows: 11, orders: 2, rejected: 8, skipped: 0 });
}

#[test]
fn a_header_only_file_has_no_orders_and_an_empty_file_is_an_error() {
    let header_only = tempfile_path::TempPath::new("header_only.csv");
    std::fs::write(&header_only.0, "order_id,customer_id,placed_at,currency,sku,quantity,unit_price\n").unwrap();
    let result = read(&header_only.0, Format::Auto);
    assert_eq!((result.orders.len(), result.rejected.len()), (0, 0));
    let empty = tempfile_path::TempPath::new("empty.csv");
    std::fs::write(&empty.0, "").unwrap();
    assert!(matches!(OrderReader::open(&empty.0, &ReadOptions::default()), Err(IngestError::Empty)));
}

#[test]
fn gzip_gives_the_same_result_as_plain() {
    for (name, path) in
        [("shopify", testdata("exports/shopify_orders_export.csv")), ("generic", fixture("generic_small.csv"))]
    {
        let gz = gzip(&path);
        let plain = read(&path, Format::Auto);
        let compressed = read(&gz.0, Format::Auto);
        assert_eq!(plain.orders, compressed.orders, "{name}");
        let reader = OrderReader::open(&gz.0, &ReadOptions::default()).unwrap();
        let progress = reader.progress();
        assert_eq!(progress.total_bytes(), Some(std::fs::metadata(&gz.0).unwrap().len()));
        let orders = reader.count();
        assert_eq!(progress.bytes_read(), progress.total_bytes().unwrap(), "{name}: all compressed bytes consumed");
        assert_eq!(orders, plain.orders.len());
    }
    let fake = tempfile_path::TempPath::new("not_gzip.csv.gz");
    std::fs::write(&fake.0, "order_id\n").unwrap();
    assert!(matches!(OrderReader::open(&fake.0, &ReadOptions::default()), Err(IngestError::NotGzip { .. })));
}

#[test]
fn delimiters_and_date_order_are_sniffed() {
    let semicolons = "order_id;customer_id;placed_at;currency;sku;quantity;unit_price\n\
                      X-1;c1;01/02/2024;EUR;A;1;1,234.50\n\
                      X-2;c1;02/25/2024 10:00;EUR;A;1;2\n";
    for (delimiter, text) in [
        (Delimiter::Semicolon, semicolons.to_owned()),
        (Delimiter::Tab, semicolons.replace(';', "\t")),
        (Delimiter::Pipe, semicolons.replace(';', "|")),
    ] {
        let reader = OrderReader::from_reader(std::io::Cursor::new(text.into_bytes()), &ReadOptions::default())
            .expect("readable");
        assert_eq!(reader.detected().delimiter, delimiter);
        assert_eq!(reader.detected().slash_date_order, SlashDateOrder::MonthFirst, "25 can only be a day");
        let orders: Vec<ImportedOrder> = reader.map(Result::unwrap).collect();
        assert_eq!(orders[0].order.placed_at.to_rfc3339(), "2024-01-02T00:00:00+00:00");
        assert_eq!(orders[0].order.total_minor(), 123_450);
    }
}

#[test]
fn column_mappings_read_any_layout() {
    let text = "Order Number,Email,Date,SKU,Qty,Price,Notes\n\
                1001,Kim@Example.com,2024-03-01 10:00,TEA,2,4.00,x\n\
                1001,Kim@Example.com,2024-03-01 10:00,CAKE,1,3.00,\n";
    let format: Format = "order_id=Order Number,email=Email,placed_at=Date,sku=SKU,quantity=Qty,\
                          unit_price=Price,currency=EUR"
        .parse()
        .unwrap();
    let options = ReadOptions { format: format.clone(), ..ReadOptions::default() };
    let orders: Vec<ImportedOrder> =
        OrderReader::from_reader(std::io::Cursor::new(text), &options).unwrap().map(Result::unwrap).collect();
    assert_eq!(orders.len(), 1);
    assert_eq!(customer_key(&orders[0]), "kim@example.com");
    assert_eq!(orders[0].order.currency.code(), "EUR");
    assert_eq!(orders[0].order.total_minor(), 1100);
    let wrong: Format = "order_id=Order No,email=Email,placed_at=Date,sku=SKU,quantity=Qty,unit_price=Price,\
                         currency=EUR"
        .parse()
        .unwrap();
    let error = OrderReader::from_reader(std::io::Cursor::new(text), &ReadOptions { format: wrong, ..options })
        .err()
        .expect("a misspelt column is an error");
    assert!(error.to_string().contains("no column \"Order No\""), "{error}");
}

#[test]
fn unknown_layouts_ask_for_a_format() {
    let error = OrderReader::from_reader(std::io::Cursor::new("when,what\n1,2\n"), &ReadOptions::default())
        .err()
        .expect("not recognised");
    assert!(matches!(error, IngestError::UnknownFormat { .. }), "{error}");
}

#[test]
fn naive_times_use_the_chosen_time_zone() {
    let options = ReadOptions { time_zone: Some(chrono_tz::Europe::Berlin), ..ReadOptions::default() };
    let result = read_with(&fixture("woocommerce_orders.csv"), &options);
    assert_eq!(result.orders[0].order.placed_at.to_rfc3339(), "2025-03-01T11:00:00+00:00");
}

#[test]
fn a_truncated_gzip_stops_with_an_error_after_the_orders_before_it() {
    let gz = gzip(&testdata("cdnow/CDNOW_master.txt"));
    let bytes = std::fs::read(&gz.0).unwrap();
    let truncated = tempfile_path::TempPath::new("truncated.txt.gz");
    std::fs::write(&truncated.0, &bytes[..bytes.len() / 2]).unwrap();
    let mut reader = OrderReader::open(&truncated.0, &ReadOptions::default()).unwrap();
    let items: Vec<Result<ImportedOrder, Rejected>> = (&mut reader).collect();
    let (last, before) = items.split_last().unwrap();
    assert!(before.len() > 10_000 && before.iter().all(Result::is_ok), "the orders before the damage are read");
    assert!(last.is_err(), "the damage is reported as a rejection too");
    assert!(reader.finish().is_err(), "and finish() returns the error");
}

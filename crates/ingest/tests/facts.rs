//! The fast facts reader against the full reader: the same facts, SKUs included, and SKU numbers that
//! name each part's SKUs consistently.

use std::fmt::Write as _;

use regulars_ingest::{FactsReader, FactsSink, OrderFacts, OrderReader, ReadOptions, facts_of};

/// The facts of an order as text, and the SKU numbers given with them.
#[derive(Default)]
struct Collect {
    facts: Vec<String>,
    /// Per order: the numbers of its SKUs, when given.
    numbers: Vec<Option<Vec<u32>>>,
    skus: Vec<Vec<String>>,
}

impl FactsSink for Collect {
    fn order(&mut self, f: &OrderFacts<'_>) {
        self.facts.push(format!("{} {} {} {} {:?}", f.customer, f.placed_at, f.currency, f.net_minor, f.skus));
        self.numbers.push(f.sku_ids.map(<[u32]>::to_vec));
        self.skus.push(f.skus.iter().map(|s| s.to_string()).collect());
    }
}

#[test]
fn the_fast_reader_numbers_skus_and_reads_them_as_the_full_reader_does() {
    let skus = [
        "A",
        " A ",
        "\"A\"",
        "TEA-CHA",
        "TEA-CHB",
        "0123456789abcdef",
        "0123456789abcdeg",
        "a-sku-longer-than-sixteen-bytes",
        "a-sku-longer-than-sixteen-bytez",
        "café",
        "\"with, a comma\"",
        "\"with \"\"quotes\"\"\"",
        "B\t",
    ];
    let mut csv = String::from("order_id,customer_id,placed_at,currency,sku,quantity,unit_price\n");
    for order in 0..400 {
        for line in 0..1 + order % 3 {
            let sku = skus[(order * 7 + line * 5) % skus.len()];
            let _ = writeln!(
                csv,
                "o{order},c{},2025-01-{:02}T10:00:00Z,EUR,{sku},1,{}.50",
                order % 37,
                1 + order % 28,
                line
            );
        }
    }
    let dir = tempfile_dir();
    let path = dir.join("skus.csv");
    std::fs::write(&path, &csv).unwrap();
    let options = ReadOptions::default();

    let mut full = Collect::default();
    let mut reader = OrderReader::open(&path, &options).unwrap();
    for order in &mut reader {
        facts_of(&order.unwrap(), &mut full);
    }
    assert_eq!(full.facts.len(), 400);
    for part_bytes in [300, 2000, 1 << 20] {
        let fast = FactsReader::open(&path, &options).unwrap().unwrap().part_bytes(part_bytes);
        let read = fast.read(Collect::default).unwrap().unwrap();
        assert_eq!(read.parts_read_in_full, 0, "{part_bytes}");
        assert!(read.parts > 1 || part_bytes == 1 << 20);
        let facts: Vec<&String> = read.sinks.iter().flat_map(|s| &s.facts).collect();
        assert_eq!(facts, full.facts.iter().collect::<Vec<_>>(), "{part_bytes}");
        for sink in &read.sinks {
            // Numbered from 0 in order of first appearance, one number per distinct SKU.
            let mut names: Vec<&String> = Vec::new();
            for (numbers, skus) in sink.numbers.iter().zip(&sink.skus) {
                let numbers = numbers.as_ref().expect("numbered");
                assert_eq!(numbers.len(), skus.len());
                for (&n, sku) in numbers.iter().zip(skus) {
                    match names.get(n as usize) {
                        Some(&name) => assert_eq!(name, sku),
                        None => {
                            assert_eq!(n as usize, names.len());
                            assert!(!names.contains(&sku), "{sku} numbered twice");
                            names.push(sku);
                        }
                    }
                }
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("regulars-facts-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

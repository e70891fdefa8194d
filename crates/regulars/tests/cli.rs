//! The `regulars` binary as a user runs it: import files, first start, and a `kill -9` under load.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn regulars() -> Command {
    Command::new(env!("CARGO_BIN_EXE_regulars"))
}

fn database(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("regulars.db").display())
}

fn run(args: &[&str], db: &str) -> (bool, String, String) {
    let out = regulars().args(args).env("REGULARS_DATABASE", db).output().expect("run regulars");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HEADER: &str = "order_id,customer_id,email,placed_at,currency,sku,quantity,unit_price\n";

#[test]
fn import_reports_rejects_and_strict_refuses_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let file = dir.path().join("orders.csv");
    let body = [
        "o1,c1,a@example.com,2026-01-05,EUR,LATTE,2,3.50",
        "o2,c2,b@example.com,2026-01-06,EUR,LATTE,-1,3.50",
        "o3,c1,a@example.com,2026-02-30,EUR,LATTE,1,3.50",
        "o4,c3,c@example.com,2026-01-07,EUX,LATTE,1,3.50",
        "o5,c3,c@example.com,2026-01-08,EUR,BUN,1,2.80",
    ];
    std::fs::write(&file, format!("{HEADER}{}\n", body.join("\n"))).unwrap();
    let rejects = dir.path().join("orders.csv.rejects.csv");

    let (ok, _, err) = run(&["import", file.to_str().unwrap(), "--strict"], &db);
    assert!(!ok, "strict import of a file with bad rows fails");
    assert!(err.contains("nothing was imported"), "{err}");
    let (_, out, _) = run(&["migrate"], &db);
    assert!(out.contains("0 customers, 0 orders"), "strict wrote nothing: {out}");

    let (ok, out, err) = run(&["import", file.to_str().unwrap(), "--format", "generic"], &db);
    assert!(ok, "{err}");
    assert!(out.contains("orders: 2 new") && out.contains("rejected: 3"), "{out}");
    let reasons = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<&str> = reasons.lines().collect();
    assert_eq!(lines[0], "line,reason");
    assert!(lines[1].starts_with("3,") && lines[1].contains("quantity"), "{reasons}");
    assert!(lines[2].starts_with("4,") && lines[2].contains("placed_at"), "{reasons}");
    assert!(lines[3].starts_with("5,") && lines[3].contains("currency"), "{reasons}");

    let (ok, out, _) = run(&["import", file.to_str().unwrap()], &db);
    assert!(ok);
    assert!(out.contains("orders: 0 new, 2 already present"), "re-import creates no duplicates: {out}");
    let (_, out, _) = run(&["migrate"], &db);
    assert!(out.contains("2 customers, 2 orders"), "{out}");
}

#[test]
fn gzip_and_cdnow_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cdnow/CDNOW_sample.txt");
    assert!(sample.exists(), "test data missing: {}", sample.display());
    let (ok, out, err) = run(&["import", sample.to_str().unwrap(), "--format", "cdnow"], &db);
    assert!(ok, "{err}");
    assert!(out.contains("customers: 2357 new"), "{out}");
    let gz = dir.path().join("orders.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, format!("{HEADER}g1,x1,x@example.com,2026-01-05,EUR,TEA,1,2.00\n").as_bytes())
        .unwrap();
    enc.finish().unwrap();
    let (ok, out, err) = run(&["import", gz.to_str().unwrap()], &db);
    assert!(ok && out.contains("orders: 1 new"), "{out}{err}");
}

/// A server process on a free port; stdout is read until it says where it listens.
struct Server {
    child: Child,
    base: String,
    first_lines: Vec<String>,
}

fn start_server(db: &str) -> Server {
    let mut child = regulars()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("REGULARS_DATABASE", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start regulars serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first_lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(Ok(line)) = lines.next().filter(|_| Instant::now() < deadline) {
        if let Some(rest) = line.split("serving http://").nth(1) {
            let base = format!("http://{}", rest.split_whitespace().next().unwrap());
            return Server { child, base, first_lines };
        }
        first_lines.push(line);
    }
    child.kill().ok();
    child.wait().ok();
    panic!("the server did not start: {first_lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_an_owner_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let mut server = start_server(&db);
    let line =
        server.first_lines.iter().find(|l| l.contains("Owner API key")).expect("an owner key is printed").clone();
    let key = line.rsplit(' ').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    let status = client.get(format!("{}/api/v1/keys", server.base)).bearer_auth(&key).send().await.unwrap().status();
    assert_eq!(status, 200);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut again = start_server(&db);
    assert!(!again.first_lines.iter().any(|l| l.contains("Owner API key")), "printed once only");
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let (ok, key, err) = run(&["keys", "create", "--role", "integration", "--name", "load"], &db);
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    let mut server = start_server(&db);
    let client = reqwest::Client::new();
    let status = client
        .post(format!("{}/api/v1/customers", server.base))
        .bearer_auth(&key)
        .json(&json!({"external_id": "c1"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (client, base, key) = (client.clone(), server.base.clone(), key.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let body = json!({"external_id": format!("w{w}-{i}"), "customer_external_id": "c1", "placed_at": "2026-03-01T10:00:00Z",
                        "currency": "EUR", "lines": [{"sku": "TEA", "quantity": 1, "unit_price_minor": 250}]});
                    match client.post(format!("{base}/api/v1/orders")).bearer_auth(&key).json(&body).send().await {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let order: Value = r.json().await.unwrap_or(Value::Null);
                            if let Some(id) = order["id"].as_str() {
                                acknowledged.push((id.to_owned(), format!("w{w}-{i}")));
                            }
                        }
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("kill -9"); // SIGKILL: no shutdown, no flush
    server.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for w in workers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(acknowledged.len() > 50, "the load ran: {} orders acknowledged", acknowledged.len());
    let mut server = start_server(&db);
    for (id, external_id) in &acknowledged {
        let r = client.get(format!("{}/api/v1/orders/{id}", server.base)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "acknowledged order {id} is missing after kill -9");
        let order: Value = r.json().await.unwrap();
        assert_eq!(order["external_id"], json!(external_id));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn a_column_mapping_reads_any_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let file = dir.path().join("till.csv");
    std::fs::write(&file, "Receipt;Client;When;Item;Qty;Price\nR1;ana@example.com;2026-01-05 10:00:00;TEA;2;2,50\nR2;ben@example.com;2026-01-06 11:00:00;CAKE;1;3,10\n").unwrap();
    let map = "order_id=Receipt,email=Client,placed_at=When,sku=Item,quantity=Qty,unit_price=Price,currency=EUR";
    let (ok, out, err) = run(&["import", file.to_str().unwrap(), "--map", map], &db);
    assert!(ok && out.contains("orders: 2 new") && out.contains("customers: 2 new"), "{out}{err}");
    let store_url = db.clone();
    let total: i64 = tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let store = regulars_store::Store::open(&store_url).await.unwrap();
        let orders = store.orders_of_customer(regulars_core::CustomerId::from_key(1), None, 10).await.unwrap();
        store.close().await;
        orders.iter().map(|o| o.total_minor).sum()
    });
    assert_eq!(total, 500, "2 x 2,50 read with a decimal comma");
}

#[test]
fn verify_reports_a_consistent_ledger_and_exits_1_on_a_tampered_one() {
    use regulars_core::loyalty::{Command as Ledger, Points, Request, RequestId};
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = regulars_store::Store::open(&db).await.unwrap();
        let customer = store.create_customer(Default::default(), chrono::Utc::now(), None).await.unwrap().id;
        for (id, command) in [
            ("a", Ledger::Adjust { points: Points::new(100), note: "opening".into(), expires_at: None }),
            ("b", Ledger::Redeem { points: Points::new(30), note: None }),
        ] {
            let request = Request { id: RequestId::parse("id", id).unwrap(), command };
            store.ledger_execute(customer, request, chrono::Utc::now(), None).await.unwrap();
        }
        store.close().await;
    });
    let (ok, out, err) = run(&["verify"], &db);
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 wallet checked: the loyalty ledger is consistent"), "{out}");

    // Someone edits a cached balance by hand: verify names it and fails.
    let conn = rusqlite::Connection::open(dir.path().join("regulars.db")).unwrap();
    conn.execute("UPDATE loyalty_wallets SET available = 90", []).unwrap();
    drop(conn);
    let out = regulars().args(["verify", "--database", &db]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cus_1: balance_mismatch: available is 90, the postings say 70"), "{stdout}");
    assert!(stdout.contains("1 wallet checked: "), "{stdout}");
}

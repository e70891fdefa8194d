//! `regulars-load`: an HTTP load generator for the benchmarks in BENCHMARKS.md.
//!
//! Creates `--customers` customers, then runs `--clients` concurrent clients for `--seconds` and prints
//! throughput and latency percentiles. `--mode orders` (and `earn`, the same requests with a loyalty program
//! defined, so each order also earns points) records orders, each with its own external id, spread over
//! the customers; `--mode redeem` first gives every customer a large balance (an owner adjustment with
//! `--setup-key`), then redeems 1 point per request with an `Idempotency-Key`, as a till would.
//! `--customers 1` puts all clients on one hot wallet. Every request must succeed; failures are counted
//! and reported. Each client keeps one HTTP/1 connection open and waits for each answer before it sends
//! the next request.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    base: String,
    /// An API key that may create customers and record orders
    #[arg(long, env = "REGULARS_KEY")]
    key: String,
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 1000)]
    customers: usize,
    /// Seconds of load before measuring starts
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// orders, earn (orders with a loyalty program defined) or redeem
    #[arg(long, default_value = "orders")]
    mode: String,
    /// An owner key, for the opening balances of `--mode redeem`
    #[arg(long, env = "REGULARS_SETUP_KEY")]
    setup_key: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.clients).build()?;
    let run_id = std::process::id();
    let redeem = match args.mode.as_str() {
        "orders" | "earn" => false,
        "redeem" => true,
        other => bail!("unknown --mode {other:?}: expected orders, earn or redeem"),
    };
    // Customers first, 64 at a time.
    let mut created = 0;
    let mut ids: Vec<String> = Vec::with_capacity(args.customers);
    for chunk in (0..args.customers).collect::<Vec<_>>().chunks(64) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let (client, base, key) = (client.clone(), args.base.clone(), args.key.clone());
            let setup = if redeem { args.setup_key.clone() } else { None };
            if redeem && setup.is_none() {
                bail!("--mode redeem needs --setup-key, an owner key for the opening balances");
            }
            tasks.push(tokio::spawn(async move {
                let r = client
                    .post(format!("{base}/api/v1/customers"))
                    .bearer_auth(key)
                    .json(&json!({"external_id": format!("load-{run_id}-{i}"), "name": format!("Load {i}")}))
                    .send()
                    .await?;
                let status = r.status().as_u16();
                let id = r.json::<serde_json::Value>().await?["id"].as_str().unwrap_or_default().to_owned();
                if let (201, Some(setup)) = (status, setup) {
                    let r = client
                        .post(format!("{base}/api/v1/customers/{id}/wallet/adjust"))
                        .bearer_auth(setup)
                        .json(&json!({"points": 1_000_000_000i64, "reason": "benchmark opening balance"}))
                        .send()
                        .await?;
                    return Ok::<_, reqwest::Error>((r.status().as_u16(), id));
                }
                Ok((status, id))
            }));
        }
        for t in tasks {
            let (status, id) = t.await?.context("create customer")?;
            if status != 201 && status != 200 {
                bail!("creating a customer (and its opening balance) returned {status}");
            }
            ids.push(id);
            created += 1;
        }
    }
    eprintln!(
        "created {created} customers; {} clients for {} s after {} s warm-up",
        args.clients, args.seconds, args.warmup
    );

    // The measured requests go out on one keep-alive connection per client, written with hyper's own
    // HTTP/1 client and bodies formatted as text: the load generator shares the machine with the
    // server, and every microsecond it spends per request is one the server does not get.
    let base: hyper::Uri = args.base.parse().with_context(|| format!("--base {:?}", args.base))?;
    if base.scheme_str() != Some("http") {
        bail!("--base {:?}: the load generator speaks plain http only", args.base);
    }
    let authority = base.authority().context("--base has no host")?.to_string();
    let prefix = base.path().trim_end_matches('/').to_owned();
    let auth = HeaderValue::from_str(&format!("Bearer {}", args.key)).context("--key")?;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(args.warmup);
    let stop_at = measure_from + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    let ids = std::sync::Arc::new(ids);
    for w in 0..args.clients {
        let (authority, prefix, auth, customers) = (authority.clone(), prefix.clone(), auth.clone(), args.customers);
        let ids = ids.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::with_capacity(100_000);
            let mut failures = 0u64;
            let mut connection = None;
            let mut i = 0usize;
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                let customer = (w * 7919 + i * 104_729) % customers;
                let builder = hyper::Request::post(if redeem {
                    format!("{prefix}/api/v1/customers/{}/wallet/redeem", ids[customer])
                } else {
                    format!("{prefix}/api/v1/orders")
                })
                .header(HOST, &authority)
                .header(AUTHORIZATION, auth.clone())
                .header(CONTENT_TYPE, "application/json");
                let (request, expected) = if redeem {
                    let request = builder
                        .header("idempotency-key", format!("load-{run_id}-{w}-{i}"))
                        .body(Full::new(Bytes::from_static(br#"{"points":1,"reason":"benchmark"}"#)));
                    (request, 200)
                } else {
                    let body = format!(
                        r#"{{"external_id":"load-{run_id}-{w}-{i}","customer_external_id":"load-{run_id}-{customer}","placed_at":"2026-11-20T09:30:00Z","currency":"EUR","lines":[{{"sku":"LATTE","quantity":2,"unit_price_minor":350}},{{"sku":"BUN","quantity":1,"unit_price_minor":280}}]}}"#
                    );
                    (builder.body(Full::new(Bytes::from(body))), 201)
                };
                let request = request.expect("a valid request");
                let sent = Instant::now();
                let ok = send(&mut connection, &authority, request).await == Some(expected);
                if sent >= measure_from {
                    if ok {
                        latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    } else {
                        failures += 1;
                    }
                }
                i += 1;
            }
            (latencies_us, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await?;
        all.extend(l);
        failures += f;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{} ({} customers, {} clients): {} in {} s = {:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; failures {}",
        args.mode,
        args.customers,
        args.clients,
        all.len(),
        args.seconds,
        all.len() as f64 / args.seconds as f64,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
        failures
    );
    if failures > 0 {
        bail!("{failures} requests failed");
    }
    Ok(())
}

/// Sends `request` on the client's connection (opened first if there is none, or again after a
/// failure) and reads the whole response: its status, or `None` when the exchange failed.
async fn send(
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    authority: &str,
    request: hyper::Request<Full<Bytes>>,
) -> Option<u16> {
    if connection.as_ref().is_none_or(|c| c.is_closed()) {
        let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(conn);
        *connection = Some(sender);
    }
    let sender = connection.as_mut()?;
    let exchanged = async {
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
    .await;
    if exchanged.is_none() {
        *connection = None;
    }
    exchanged
}

//! `regulars`: the command line. Parses flags (each also read from a `REGULARS_*` variable),
//! wires the crates together, and reports. `anyhow` lives here and nowhere else.

mod analyze;
mod backtest;
mod demo;
mod import;

use std::net::SocketAddr;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use regulars_core::Role;
use regulars_server::{AppState, system_clock};
use regulars_store::Store;

/// mimalloc keeps freed memory for the next allocation instead of handing it back to the system at
/// once: `regulars analyze` builds and drops logs of hundreds of megabytes, and fresh pages cost more
/// than the work done on them. Built without transparent huge pages (feature `no_thp`): zeroing whole
/// 2 MiB pages on first touch cost more than it saved.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "regulars",
    version,
    about = "Keep the customers you have: retention analytics, loyalty, service, win-back."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DatabaseArg {
    /// sqlite://PATH (an embedded file, created when missing) or postgres://USER@HOST/DB
    #[arg(long, env = "REGULARS_DATABASE", default_value = "sqlite://regulars.db")]
    database: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (and apply pending migrations first)
    Serve {
        #[arg(long, env = "REGULARS_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        db: DatabaseArg,
        /// Fill an empty database with a generated demo shop first
        #[arg(long, env = "REGULARS_DEMO")]
        demo: bool,
        /// Seconds between refreshes of the analytics snapshot (the first runs at start); 0 turns the job off
        #[arg(long, env = "REGULARS_SNAPSHOT_EVERY", default_value_t = 3600)]
        snapshot_every: u64,
        /// Seconds between runs of the loyalty job (lots maturing and expiring, holds timing out, written to
        /// the stored balances; "points expiring" reminders; once an hour, tier downgrades and birthday
        /// bonuses); 0 turns it off. Reads and writes settle on their own anyway.
        #[arg(long, env = "REGULARS_SETTLE_EVERY", default_value_t = 60)]
        settle_every: u64,
    },
    /// Apply pending database migrations and exit
    Migrate {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Generate a demo shop into the database, or as generic CSV with --csv
    Demo(demo::DemoArgs),
    /// Import orders, customers and refunds from an export file (.csv or .csv.gz)
    Import(import::ImportArgs),
    /// Analyse an export file without a server: models, cohorts, RFM, CLV; terminal, JSON, CSV, HTML
    Analyze(analyze::AnalyzeArgs),
    /// Check every loyalty wallet's ledger: postings balance, lots and holds add up to the balances, no
    /// negative balance, no order refunded more points than it earned. Exits 1 if anything is found.
    Verify {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Loyalty tools: `backtest` a proposed program against the recorded history
    Loyalty {
        #[command(subcommand)]
        command: LoyaltyCommand,
    },
    /// Manage API keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum LoyaltyCommand {
    /// Replay the recorded orders and refunds through a proposed program and the current one, in memory
    /// (nothing is written), and compare points issued, liability, expected redemptions and tiers
    Backtest(backtest::BacktestArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it once (only its hash is stored)
    Create {
        /// owner, analyst, agent, cashier or integration
        #[arg(long)]
        role: Role,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List keys (their public prefixes, never secrets)
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke a key by its prefix (rgl_ and 12 hex digits)
    Revoke {
        prefix: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
    runtime.block_on(run(cli))
}

async fn open(db: &DatabaseArg) -> Result<Store> {
    Store::open(&db.database).await.with_context(|| format!("open the database {}", db.database))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { listen, db, demo, snapshot_every, settle_every } => {
            serve(listen, &db, demo, snapshot_every, settle_every).await
        }
        Command::Migrate { db } => {
            let store = open(&db).await?;
            // Store::open applied them; say what the database holds now.
            let counts = store.counts().await?;
            println!("{}: schema up to date ({} customers, {} orders)", db.database, counts.customers, counts.orders);
            store.close().await;
            Ok(())
        }
        Command::Import(args) => import::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Analyze(args) => analyze::run(args),
        Command::Keys { command } => keys(command).await,
        Command::Loyalty { command: LoyaltyCommand::Backtest(args) } => backtest::run(args).await,
        Command::Verify { db } => verify(&db).await,
    }
}

async fn verify(db: &DatabaseArg) -> Result<()> {
    let store = open(db).await?;
    let report = store.verify_loyalty().await.context("verify the loyalty ledger")?;
    store.close().await;
    for (customer, finding) in &report.findings {
        println!("{customer}: {}: {finding}", finding.code());
    }
    let wallets = if report.wallets == 1 { "1 wallet".to_owned() } else { format!("{} wallets", report.wallets) };
    if report.findings.is_empty() {
        println!("{wallets} checked: the loyalty ledger is consistent");
        Ok(())
    } else {
        println!("{wallets} checked: {} findings", report.findings.len());
        std::process::exit(1);
    }
}

async fn serve(listen: SocketAddr, db: &DatabaseArg, demo: bool, snapshot_every: u64, settle_every: u64) -> Result<()> {
    let store = open(db).await?;
    if demo && store.counts().await?.customers == 0 {
        let config = regulars_demo::DemoConfig::new(1, demo::DEFAULT_CUSTOMERS, Utc::now().date_naive());
        let written = demo::fill(&store, config).await.context("fill the demo shop")?;
        println!(
            "regulars: demo shop ready: {} customers, {} orders",
            written.customers_created, written.orders_created
        );
    }
    if store.counts().await?.api_keys == 0 {
        let owner = store.create_api_key("owner (first start)", Role::Owner, Utc::now()).await?;
        println!("Owner API key (shown once, store it now): {}", owner.secret);
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listen on {listen}"))?;
    let address = listener.local_addr()?;
    println!("regulars: serving http://{address} on {} ({})", store.backend_name(), db.database);
    let state = AppState::new(store.clone(), system_clock());
    let job = (snapshot_every > 0).then(|| tokio::spawn(snapshot_job(store.clone(), snapshot_every)));
    let settle = (settle_every > 0).then(|| tokio::spawn(settle_job(store.clone(), settle_every)));
    regulars_server::serve(listener, state, shutdown_signal()).await.context("serve HTTP")?;
    for job in [job, settle].into_iter().flatten() {
        job.abort();
    }
    store.close().await;
    eprintln!("regulars: stopped");
    Ok(())
}

/// Refreshes the analytics snapshot now and then every `every_seconds`.
async fn snapshot_job(store: Store, every_seconds: u64) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(every_seconds));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match regulars_server::snapshot::refresh(&store, Utc::now()).await {
            Ok(Some(r)) => eprintln!(
                "regulars: analytics snapshot {} as of {}: {} customers, {} orders in {:.1} s",
                r.snapshot_id, r.as_of, r.customers, r.orders, r.seconds
            ),
            Ok(None) => {}
            Err(e) => eprintln!("regulars: analytics snapshot failed: {e}"),
        }
    }
}

/// The loyalty job: every `every_seconds`, writes what time did to the wallets where something is due and
/// records "points expiring" reminders; once an hour also evaluates tiers (downgrades) and grants birthdays.
async fn settle_job(store: Store, every_seconds: u64) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(every_seconds));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_hour = None;
    loop {
        ticks.tick().await;
        let now = Utc::now();
        let hour = now.timestamp().div_euclid(3600);
        let hourly = last_hour != Some(hour);
        match store.loyalty_tick(now, hourly).await {
            Ok(t) => {
                if hourly {
                    last_hour = Some(hour);
                }
                if t.wallets_settled + t.tier_changes + t.reminders + t.birthdays > 0 {
                    eprintln!(
                        "regulars: loyalty job: {} wallets settled ({} postings), {} tier changes, {} reminders, \
                         {} birthday bonuses",
                        t.wallets_settled, t.postings, t.tier_changes, t.reminders, t.birthdays
                    );
                }
            }
            Err(e) => eprintln!("regulars: loyalty job failed: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn keys(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create { role, name, db } => {
            let store = open(&db).await?;
            let new = store.create_api_key(&name, role, Utc::now()).await?;
            println!("{}", new.secret);
            eprintln!("created {} key {:?} ({}); this is the only time the key is shown", role, name, new.key.prefix);
            store.close().await;
        }
        KeysCommand::List { db } => {
            let store = open(&db).await?;
            for k in store.api_keys().await? {
                let state = k.revoked_at.map_or("active".to_owned(), |t| format!("revoked {}", t.to_rfc3339()));
                println!(
                    "{}  {:<12} {:<30} created {}  {}",
                    k.prefix,
                    k.role,
                    k.name,
                    k.created_at.to_rfc3339(),
                    state
                );
            }
            store.close().await;
        }
        KeysCommand::Revoke { prefix, db } => {
            let store = open(&db).await?;
            let key = store.revoke_api_key(&prefix, Utc::now()).await?;
            store.close().await;
            match key {
                Some(k) => println!("revoked {} ({} {:?})", k.prefix, k.role, k.name),
                None => anyhow::bail!("no API key with prefix {prefix:?}"),
            }
        }
    }
    Ok(())
}

-- Dated snapshots of the analytics: the whole report as JSON, and per-customer figures for fast lookups.
CREATE TABLE analytics_snapshots (
    id INTEGER PRIMARY KEY,
    computed_at INTEGER NOT NULL,
    as_of TEXT NOT NULL,
    report TEXT NOT NULL
);

CREATE TABLE customer_figures (
    snapshot_id INTEGER NOT NULL REFERENCES analytics_snapshots (id),
    customer_id INTEGER NOT NULL,
    frequency INTEGER NOT NULL,
    total_spend_minor INTEGER NOT NULL,
    last_purchase TEXT NOT NULL,
    probability_alive REAL,
    expected_purchases REAL,
    expected_value REAL,
    clv REAL,
    segment TEXT NOT NULL,
    rfm TEXT NOT NULL,
    median_gap_days REAL,
    overdue INTEGER NOT NULL,
    value_at_risk REAL NOT NULL,
    PRIMARY KEY (snapshot_id, customer_id)
);
CREATE INDEX customer_figures_at_risk ON customer_figures (snapshot_id, value_at_risk DESC, customer_id);

-- Times are microseconds since the Unix epoch (UTC); money is integer minor units.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    email TEXT,
    phone TEXT,
    name TEXT,
    birthday TEXT,
    locale TEXT,
    time_zone TEXT,
    consent_marketing INTEGER NOT NULL DEFAULT 0 CHECK (consent_marketing IN (0, 1)),
    consent_recorded_at INTEGER,
    consent_source TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    first_seen_at INTEGER NOT NULL,
    erased_at INTEGER,
    pseudonym TEXT
);
CREATE INDEX customers_email ON customers (email);
CREATE INDEX customers_phone ON customers (phone);

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT,
    price_minor INTEGER CHECK (price_minor >= 0),
    price_currency TEXT
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    placed_at INTEGER NOT NULL,
    currency TEXT NOT NULL,
    total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
    refunded_minor INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= total_minor),
    recorded_at INTEGER NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, id);

CREATE TABLE order_lines (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    line_no INTEGER NOT NULL,
    sku TEXT NOT NULL,
    name TEXT,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    discount_minor INTEGER NOT NULL CHECK (discount_minor >= 0),
    refunded_quantity INTEGER NOT NULL DEFAULT 0 CHECK (refunded_quantity >= 0 AND refunded_quantity <= quantity),
    PRIMARY KEY (order_id, line_no)
) WITHOUT ROWID;

CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    refunded_at INTEGER NOT NULL,
    reason TEXT,
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0)
);
CREATE INDEX refunds_order ON refunds (order_id);

CREATE TABLE refund_lines (
    refund_id INTEGER NOT NULL REFERENCES refunds (id),
    line_no INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    PRIMARY KEY (refund_id, line_no)
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- The loyalty ledger (crates/core/src/loyalty). Program versions, lots, holds, hold draws, hold resolutions,
-- postings and request records are appended and never updated or deleted (triggers refuse it). The wallet
-- row, lot balances, open holds and per-order figures are caches of what the postings say, written in the
-- same transaction, held in range by CHECK constraints and compared with the postings by `regulars verify`.
CREATE TABLE loyalty_programs (
    version INTEGER PRIMARY KEY,
    definition TEXT NOT NULL,
    defined_at INTEGER NOT NULL
);

CREATE TABLE loyalty_wallets (
    customer_id INTEGER PRIMARY KEY REFERENCES customers (id),
    available INTEGER NOT NULL DEFAULT 0 CHECK (available >= 0),
    pending INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
    held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    debt INTEGER NOT NULL DEFAULT 0 CHECK (debt <= 0),
    lots_created INTEGER NOT NULL DEFAULT 0 CHECK (lots_created >= 0),
    holds_created INTEGER NOT NULL DEFAULT 0 CHECK (holds_created >= 0),
    postings INTEGER NOT NULL DEFAULT 0 CHECK (postings >= 0),
    tier TEXT
);

CREATE TABLE loyalty_lots (
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    lot_no INTEGER NOT NULL CHECK (lot_no > 0),
    points INTEGER NOT NULL CHECK (points > 0),
    earned_at INTEGER NOT NULL,
    available_from INTEGER NOT NULL,
    expires_at INTEGER,
    source TEXT NOT NULL CHECK (source IN ('order', 'award', 'adjustment')),
    order_id INTEGER,
    order_number TEXT,
    PRIMARY KEY (customer_id, lot_no)
) WITHOUT ROWID;

-- What is left of each lot; `due_at` is when time next acts on it (matures or expires).
CREATE TABLE loyalty_lot_balances (
    customer_id INTEGER NOT NULL,
    lot_no INTEGER NOT NULL,
    points INTEGER NOT NULL,
    remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    matured INTEGER NOT NULL CHECK (matured IN (0, 1)),
    due_at INTEGER,
    PRIMARY KEY (customer_id, lot_no),
    FOREIGN KEY (customer_id, lot_no) REFERENCES loyalty_lots (customer_id, lot_no)
) WITHOUT ROWID;
CREATE INDEX loyalty_lot_balances_live ON loyalty_lot_balances (customer_id, due_at) WHERE remaining > 0;

CREATE TABLE loyalty_holds (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    hold_no INTEGER NOT NULL CHECK (hold_no > 0),
    points INTEGER NOT NULL CHECK (points > 0),
    placed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (customer_id, hold_no)
);

CREATE TABLE loyalty_hold_draws (
    customer_id INTEGER NOT NULL,
    hold_no INTEGER NOT NULL,
    draw_no INTEGER NOT NULL,
    lot_no INTEGER NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    PRIMARY KEY (customer_id, hold_no, draw_no),
    FOREIGN KEY (customer_id, hold_no) REFERENCES loyalty_holds (customer_id, hold_no)
) WITHOUT ROWID;

-- One row per hold at most: a hold resolves exactly once.
CREATE TABLE loyalty_hold_resolutions (
    customer_id INTEGER NOT NULL,
    hold_no INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('captured', 'voided', 'expired')),
    captured INTEGER NOT NULL CHECK (captured >= 0),
    resolved_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, hold_no),
    FOREIGN KEY (customer_id, hold_no) REFERENCES loyalty_holds (customer_id, hold_no)
) WITHOUT ROWID;

CREATE TABLE loyalty_open_holds (
    customer_id INTEGER NOT NULL,
    hold_no INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, hold_no),
    FOREIGN KEY (customer_id, hold_no) REFERENCES loyalty_holds (customer_id, hold_no)
) WITHOUT ROWID;

-- `seq` numbers a wallet's postings from 1; the wallet row's `postings` is the last one.
CREATE TABLE loyalty_postings (
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    seq INTEGER NOT NULL CHECK (seq > 0),
    debit TEXT NOT NULL,
    credit TEXT NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    lot_no INTEGER,
    hold_no INTEGER,
    reason TEXT NOT NULL,
    detail TEXT,
    at INTEGER NOT NULL,
    request_id TEXT,
    CHECK (debit <> credit),
    PRIMARY KEY (customer_id, seq)
) WITHOUT ROWID;

CREATE TABLE loyalty_requests (
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    points INTEGER NOT NULL,
    lot_no INTEGER,
    hold_no INTEGER,
    shortfall INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, request_id)
) WITHOUT ROWID;

CREATE TABLE loyalty_order_points (
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    order_id INTEGER NOT NULL,
    earned INTEGER NOT NULL CHECK (earned >= 0),
    clawed_back INTEGER NOT NULL CHECK (clawed_back >= 0 AND clawed_back <= earned),
    PRIMARY KEY (customer_id, order_id)
) WITHOUT ROWID;

-- Coupons: batches of codes with global and per-customer limits. `uses` counts are moved in the writing
-- statement (`uses < max_uses`), so concurrent redemptions cannot exceed a limit; redemptions are appended.
CREATE TABLE loyalty_coupon_batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('amount_off', 'percent_off')),
    value INTEGER NOT NULL CHECK (value > 0),
    currency TEXT,
    max_uses INTEGER CHECK (max_uses > 0),
    max_uses_per_customer INTEGER CHECK (max_uses_per_customer > 0),
    valid_from INTEGER,
    valid_until INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE loyalty_coupons (
    code TEXT PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES loyalty_coupon_batches (id),
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses))
) WITHOUT ROWID;

CREATE TABLE loyalty_coupon_customer_uses (
    code TEXT NOT NULL REFERENCES loyalty_coupons (code),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    uses INTEGER NOT NULL CHECK (uses > 0),
    PRIMARY KEY (code, customer_id)
) WITHOUT ROWID;

CREATE TABLE loyalty_coupon_redemptions (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL REFERENCES loyalty_coupons (code),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    redeemed_at INTEGER NOT NULL
);

CREATE TRIGGER loyalty_programs_append_only BEFORE UPDATE ON loyalty_programs
    BEGIN SELECT RAISE(ABORT, 'loyalty_programs rows are appended, never changed'); END;
CREATE TRIGGER loyalty_programs_no_delete BEFORE DELETE ON loyalty_programs
    BEGIN SELECT RAISE(ABORT, 'loyalty_programs rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_lots_append_only BEFORE UPDATE ON loyalty_lots
    BEGIN SELECT RAISE(ABORT, 'loyalty_lots rows are appended, never changed'); END;
CREATE TRIGGER loyalty_lots_no_delete BEFORE DELETE ON loyalty_lots
    BEGIN SELECT RAISE(ABORT, 'loyalty_lots rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_holds_append_only BEFORE UPDATE ON loyalty_holds
    BEGIN SELECT RAISE(ABORT, 'loyalty_holds rows are appended, never changed'); END;
CREATE TRIGGER loyalty_holds_no_delete BEFORE DELETE ON loyalty_holds
    BEGIN SELECT RAISE(ABORT, 'loyalty_holds rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_hold_draws_append_only BEFORE UPDATE ON loyalty_hold_draws
    BEGIN SELECT RAISE(ABORT, 'loyalty_hold_draws rows are appended, never changed'); END;
CREATE TRIGGER loyalty_hold_draws_no_delete BEFORE DELETE ON loyalty_hold_draws
    BEGIN SELECT RAISE(ABORT, 'loyalty_hold_draws rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_hold_resolutions_append_only BEFORE UPDATE ON loyalty_hold_resolutions
    BEGIN SELECT RAISE(ABORT, 'loyalty_hold_resolutions rows are appended, never changed'); END;
CREATE TRIGGER loyalty_hold_resolutions_no_delete BEFORE DELETE ON loyalty_hold_resolutions
    BEGIN SELECT RAISE(ABORT, 'loyalty_hold_resolutions rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_postings_append_only BEFORE UPDATE ON loyalty_postings
    BEGIN SELECT RAISE(ABORT, 'loyalty_postings rows are appended, never changed'); END;
CREATE TRIGGER loyalty_postings_no_delete BEFORE DELETE ON loyalty_postings
    BEGIN SELECT RAISE(ABORT, 'loyalty_postings rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_requests_append_only BEFORE UPDATE ON loyalty_requests
    BEGIN SELECT RAISE(ABORT, 'loyalty_requests rows are appended, never changed'); END;
CREATE TRIGGER loyalty_requests_no_delete BEFORE DELETE ON loyalty_requests
    BEGIN SELECT RAISE(ABORT, 'loyalty_requests rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_coupon_redemptions_append_only BEFORE UPDATE ON loyalty_coupon_redemptions
    BEGIN SELECT RAISE(ABORT, 'loyalty_coupon_redemptions rows are appended, never changed'); END;
CREATE TRIGGER loyalty_coupon_redemptions_no_delete BEFORE DELETE ON loyalty_coupon_redemptions
    BEGIN SELECT RAISE(ABORT, 'loyalty_coupon_redemptions rows are appended, never deleted'); END;

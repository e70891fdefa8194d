-- Rewards, punch cards, held coupon redemptions, promotions and VIP sales (issue 4).
-- Counters (`issued`, per-customer uses) are moved in the writing statement under CHECKs; redemptions,
-- stamps, completed cards, coupon holds and their resolutions are appended and never changed.

-- What a code gives when it is not an amount or a percentage off the order: `gift` in words, and
-- `gift_sku`, the item it makes free (stored as 100% off one unit of that SKU: kind 'percent_off', 100).
ALTER TABLE loyalty_coupon_batches ADD COLUMN gift TEXT;
ALTER TABLE loyalty_coupon_batches ADD COLUMN gift_sku TEXT;

CREATE TABLE loyalty_rewards (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('free_item', 'amount_off', 'percent_off')),
    sku TEXT,
    value INTEGER NOT NULL CHECK (value > 0),
    currency TEXT,
    cost INTEGER NOT NULL CHECK (cost > 0),
    stock INTEGER CHECK (stock >= 0),
    issued INTEGER NOT NULL DEFAULT 0 CHECK (issued >= 0 AND (stock IS NULL OR issued <= stock)),
    per_customer_limit INTEGER CHECK (per_customer_limit > 0),
    valid_from INTEGER,
    valid_until INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE loyalty_reward_customer_uses (
    reward_id INTEGER NOT NULL REFERENCES loyalty_rewards (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    uses INTEGER NOT NULL CHECK (uses > 0),
    PRIMARY KEY (reward_id, customer_id)
) WITHOUT ROWID;

CREATE TABLE loyalty_reward_redemptions (
    id INTEGER PRIMARY KEY,
    reward_id INTEGER NOT NULL REFERENCES loyalty_rewards (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    points INTEGER NOT NULL CHECK (points > 0),
    code TEXT REFERENCES loyalty_coupons (code),
    redeemed_at INTEGER NOT NULL
);

-- Punch cards (defined in the program, named by `card`): stamps, how each one ended (used on card
-- `card_no`, or removed by a refund when `card_no` is NULL), and completed cards with the code issued.
CREATE TABLE loyalty_punch_stamps (
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    card TEXT NOT NULL,
    stamp_no INTEGER NOT NULL CHECK (stamp_no > 0),
    order_id INTEGER NOT NULL REFERENCES orders (id),
    stamped_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (customer_id, card, stamp_no)
) WITHOUT ROWID;

CREATE TABLE loyalty_punch_stamp_ends (
    customer_id INTEGER NOT NULL,
    card TEXT NOT NULL,
    stamp_no INTEGER NOT NULL,
    card_no INTEGER,
    ended_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, card, stamp_no),
    FOREIGN KEY (customer_id, card, stamp_no) REFERENCES loyalty_punch_stamps (customer_id, card, stamp_no)
) WITHOUT ROWID;

CREATE TABLE loyalty_punch_cards (
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    card TEXT NOT NULL,
    card_no INTEGER NOT NULL CHECK (card_no > 0),
    order_id INTEGER NOT NULL REFERENCES orders (id),
    code TEXT NOT NULL REFERENCES loyalty_coupons (code),
    completed_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, card, card_no)
) WITHOUT ROWID;

-- A coupon held by a checkout counts against the coupon's limits while it is neither resolved nor expired.
CREATE TABLE loyalty_coupon_holds (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL REFERENCES loyalty_coupons (code),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    placed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX loyalty_coupon_holds_code ON loyalty_coupon_holds (code, expires_at);

CREATE TABLE loyalty_coupon_hold_resolutions (
    hold_id INTEGER PRIMARY KEY REFERENCES loyalty_coupon_holds (id),
    kind TEXT NOT NULL CHECK (kind IN ('confirmed', 'released')),
    redemption_id INTEGER REFERENCES loyalty_coupon_redemptions (id),
    resolved_at INTEGER NOT NULL
);

CREATE TABLE loyalty_promotions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('amount_off', 'percent_off', 'buy_x_get_y')),
    value INTEGER NOT NULL CHECK (value > 0),
    buy INTEGER,
    get INTEGER,
    sku TEXT,
    category TEXT,
    stacking TEXT NOT NULL CHECK (stacking IN ('exclusive', 'combinable')),
    minimum_minor INTEGER NOT NULL DEFAULT 0 CHECK (minimum_minor >= 0),
    currency TEXT NOT NULL,
    tiers TEXT NOT NULL,
    valid_from INTEGER,
    valid_until INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE loyalty_sales (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    early_access_from INTEGER NOT NULL,
    -- JSON arrays of tier names and of RFM segment names (as in customer_figures.segment); not both empty.
    tiers TEXT NOT NULL,
    segments TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK (early_access_from <= starts_at AND starts_at < ends_at),
    CHECK (tiers <> '[]' OR segments <> '[]')
);

-- Who was given an early-access token (the token itself is not kept: it is signed, and checked by its signature).
CREATE TABLE loyalty_sale_access_grants (
    id INTEGER PRIMARY KEY,
    sale_id INTEGER NOT NULL REFERENCES loyalty_sales (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    -- The customer's tier and segment (latest snapshot) at the grant; one of them gave access.
    tier TEXT,
    segment TEXT,
    issued_at INTEGER NOT NULL,
    CHECK (tier IS NOT NULL OR segment IS NOT NULL)
);

-- Secrets the server generates on first use (the key signing VIP access tokens); never sent anywhere.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER loyalty_reward_redemptions_append_only BEFORE UPDATE ON loyalty_reward_redemptions
    BEGIN SELECT RAISE(ABORT, 'loyalty_reward_redemptions rows are appended, never changed'); END;
CREATE TRIGGER loyalty_reward_redemptions_no_delete BEFORE DELETE ON loyalty_reward_redemptions
    BEGIN SELECT RAISE(ABORT, 'loyalty_reward_redemptions rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_punch_stamps_append_only BEFORE UPDATE ON loyalty_punch_stamps
    BEGIN SELECT RAISE(ABORT, 'loyalty_punch_stamps rows are appended, never changed'); END;
CREATE TRIGGER loyalty_punch_stamps_no_delete BEFORE DELETE ON loyalty_punch_stamps
    BEGIN SELECT RAISE(ABORT, 'loyalty_punch_stamps rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_punch_stamp_ends_append_only BEFORE UPDATE ON loyalty_punch_stamp_ends
    BEGIN SELECT RAISE(ABORT, 'loyalty_punch_stamp_ends rows are appended, never changed'); END;
CREATE TRIGGER loyalty_punch_stamp_ends_no_delete BEFORE DELETE ON loyalty_punch_stamp_ends
    BEGIN SELECT RAISE(ABORT, 'loyalty_punch_stamp_ends rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_punch_cards_append_only BEFORE UPDATE ON loyalty_punch_cards
    BEGIN SELECT RAISE(ABORT, 'loyalty_punch_cards rows are appended, never changed'); END;
CREATE TRIGGER loyalty_punch_cards_no_delete BEFORE DELETE ON loyalty_punch_cards
    BEGIN SELECT RAISE(ABORT, 'loyalty_punch_cards rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_coupon_holds_append_only BEFORE UPDATE ON loyalty_coupon_holds
    BEGIN SELECT RAISE(ABORT, 'loyalty_coupon_holds rows are appended, never changed'); END;
CREATE TRIGGER loyalty_coupon_holds_no_delete BEFORE DELETE ON loyalty_coupon_holds
    BEGIN SELECT RAISE(ABORT, 'loyalty_coupon_holds rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_coupon_hold_resolutions_append_only BEFORE UPDATE ON loyalty_coupon_hold_resolutions
    BEGIN SELECT RAISE(ABORT, 'loyalty_coupon_hold_resolutions rows are appended, never changed'); END;
CREATE TRIGGER loyalty_coupon_hold_resolutions_no_delete BEFORE DELETE ON loyalty_coupon_hold_resolutions
    BEGIN SELECT RAISE(ABORT, 'loyalty_coupon_hold_resolutions rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_sale_access_grants_append_only BEFORE UPDATE ON loyalty_sale_access_grants
    BEGIN SELECT RAISE(ABORT, 'loyalty_sale_access_grants rows are appended, never changed'); END;
CREATE TRIGGER loyalty_sale_access_grants_no_delete BEFORE DELETE ON loyalty_sale_access_grants
    BEGIN SELECT RAISE(ABORT, 'loyalty_sale_access_grants rows are appended, never deleted'); END;

-- Tiers, "points expiring" reminders and referrals (issue 4).
--
-- The wallet row caches where a customer stands in the tier ladder (`tier` already exists): since when, the
-- end of the qualification period, and since when the measure has been below the tier's threshold (the
-- grace clock). Every change of tier is appended to `loyalty_tier_changes` with its reason.
ALTER TABLE loyalty_wallets ADD COLUMN tier_since INTEGER;
ALTER TABLE loyalty_wallets ADD COLUMN tier_kept_until INTEGER;
ALTER TABLE loyalty_wallets ADD COLUMN tier_below_since INTEGER;

CREATE TABLE loyalty_tier_changes (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    from_tier TEXT,
    to_tier TEXT,
    reason TEXT NOT NULL CHECK (reason IN ('qualified', 'downgraded')),
    measure INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    below_since INTEGER,
    at INTEGER NOT NULL
);
CREATE INDEX loyalty_tier_changes_customer ON loyalty_tier_changes (customer_id, id);
-- The "points earned" measure sums a customer's earning and clawback postings in the window: this reads
-- only those, so an evaluation does not scan a long wallet's whole history.
CREATE INDEX loyalty_postings_earned ON loyalty_postings (customer_id, at)
    WHERE reason IN ('earned', 'clawed_back', 'debt_recorded', 'written_off');

-- Events for engagement (e-mails, pushes) to read: `points_expiring` (one per lot and reminder window,
-- `dedup_key` = 'lot:<lot_no>:<days>d'). The unique key makes each reminder once, however often the job runs.
CREATE TABLE loyalty_events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    dedup_key TEXT NOT NULL,
    points INTEGER,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, customer_id, dedup_key)
);
CREATE INDEX loyalty_events_kind ON loyalty_events (kind, id);

-- Who referred a customer (set when the customer is created with `referred_by`).
CREATE TABLE loyalty_referrals (
    friend_id INTEGER PRIMARY KEY REFERENCES customers (id),
    referrer_id INTEGER NOT NULL REFERENCES customers (id),
    recorded_at INTEGER NOT NULL,
    CHECK (friend_id <> referrer_id)
);

CREATE TRIGGER loyalty_tier_changes_append_only BEFORE UPDATE ON loyalty_tier_changes
    BEGIN SELECT RAISE(ABORT, 'loyalty_tier_changes rows are appended, never changed'); END;
CREATE TRIGGER loyalty_tier_changes_no_delete BEFORE DELETE ON loyalty_tier_changes
    BEGIN SELECT RAISE(ABORT, 'loyalty_tier_changes rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_events_append_only BEFORE UPDATE ON loyalty_events
    BEGIN SELECT RAISE(ABORT, 'loyalty_events rows are appended, never changed'); END;
CREATE TRIGGER loyalty_events_no_delete BEFORE DELETE ON loyalty_events
    BEGIN SELECT RAISE(ABORT, 'loyalty_events rows are appended, never deleted'); END;
CREATE TRIGGER loyalty_referrals_append_only BEFORE UPDATE ON loyalty_referrals
    BEGIN SELECT RAISE(ABORT, 'loyalty_referrals rows are appended, never changed'); END;

-- Cheaper earning (issue 4). Every commit writes each page it changed to the WAL, so what an earning
-- order costs is mostly how many pages it changes. Rows keyed by customer land on a page of their own for
-- each customer; rows keyed by something that grows with time land on the few pages at the end of their
-- tree. `loyalty_requests` is keyed by request id first: an order's request id (`order:ord_123`) grows with
-- the order id, so the request records of a batch of orders share a page.
--
-- The per-customer indexes of live lots and of earning postings stay: without them, a wallet with a long
-- history reads all of it on every earning (measured with the live-lot index keyed by due time alone: the
-- hot-wallet benchmark fell from about 9,000 to 1,225 orders/s). `loyalty_order_points` keeps its key:
-- keyed by order id alone, a customer's rows could only be found through `orders`, and the ledger also
-- takes earnings that name an order it does not hold.
CREATE TABLE loyalty_requests_by_id (
    request_id TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES loyalty_wallets (customer_id),
    fingerprint TEXT NOT NULL,
    points INTEGER NOT NULL,
    lot_no INTEGER,
    hold_no INTEGER,
    shortfall INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, customer_id)
) WITHOUT ROWID;
INSERT INTO loyalty_requests_by_id (request_id, customer_id, fingerprint, points, lot_no, hold_no, shortfall,
    recorded_at)
    SELECT request_id, customer_id, fingerprint, points, lot_no, hold_no, shortfall, recorded_at
    FROM loyalty_requests ORDER BY request_id, customer_id;
DROP TABLE loyalty_requests;
ALTER TABLE loyalty_requests_by_id RENAME TO loyalty_requests;
CREATE TRIGGER loyalty_requests_append_only BEFORE UPDATE ON loyalty_requests
    BEGIN SELECT RAISE(ABORT, 'loyalty_requests rows are appended, never changed'); END;
CREATE TRIGGER loyalty_requests_no_delete BEFORE DELETE ON loyalty_requests
    BEGIN SELECT RAISE(ABORT, 'loyalty_requests rows are appended, never deleted'); END;

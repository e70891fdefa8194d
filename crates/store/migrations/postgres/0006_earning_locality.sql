-- Cheaper earning (issue 4): the same key as the SQLite schema (see its 0006 for why). An order's request
-- id grows with the order id, so keyed by request id first the records of a batch of orders share a page.
ALTER TABLE loyalty_requests DROP CONSTRAINT loyalty_requests_pkey;
ALTER TABLE loyalty_requests ADD PRIMARY KEY (request_id, customer_id);

DROP TABLE billing_events;

--bun:split

DROP TABLE billing_accounts;

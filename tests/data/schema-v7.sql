-- Schema version 7, made by the code of commit 6bf5e30
-- with tests/data/make_schema_fixture.py 7; do not edit by hand.
BEGIN TRANSACTION;
CREATE TABLE customer_history (
        customer_id TEXT NOT NULL,
        version     INTEGER NOT NULL,
        at          TEXT NOT NULL,
        action      TEXT NOT NULL,
        actor       TEXT,
        request_id  TEXT,
        changes     TEXT NOT NULL,
        PRIMARY KEY (customer_id, version)
    ) WITHOUT ROWID;
INSERT INTO "customer_history" VALUES('01a24f1e-51a7-778e-8fa3-a00bb3412829',1,'2026-12-07T06:08:36.775789Z','created',NULL,NULL,'{"name":{"from":null,"to":"Aino Mäkelä"},"email":{"from":null,"to":"Aino.Makela@Example.fi"},"phone":{"from":null,"to":"+358 40 1234567"},"businessId":{"from":null,"to":"0112038-9"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51a8-7dff-807a-6e2f35576f58',1,'2026-12-07T06:08:36.776716Z','created',NULL,NULL,'{"name":{"from":null,"to":"Bob Builder"},"email":{"from":null,"to":"bob@example.com"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51a9-7460-8a7f-607fba119cb4',1,'2026-12-07T06:08:36.777910Z','created',NULL,NULL,'{"name":{"from":null,"to":"陈伟 (Chen Wei)"},"email":{"from":null,"to":"chen.wei@example.cn"},"businessId":{"from":null,"to":"2331972-7"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51a9-7821-8ec3-4d7781d5da17',1,'2026-12-07T06:08:36.777246Z','created',NULL,NULL,'{"name":{"from":null,"to":"Jürgen Groß"},"email":{"from":null,"to":"juergen@example.de"},"phone":{"from":null,"to":"+49 30 1234567"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51aa-7814-9099-73e85387f1d4',1,'2026-12-07T06:08:36.778483Z','created',NULL,NULL,'{"name":{"from":null,"to":"Dana O''Neil"},"email":{"from":null,"to":"dana@example.ie"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51aa-7814-9099-73e85387f1d4',2,'2026-12-07T06:08:36.779101Z','updated',NULL,NULL,'{"phone":{"from":null,"to":"+353 1 234 5678"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51aa-7814-9099-73e85387f1d4',3,'2026-12-07T06:08:36.779743Z','updated',NULL,NULL,'{"name":{"from":"Dana O''Neil","to":"Dana Ó Néill"}}');
INSERT INTO "customer_history" VALUES('01a24f1e-51ac-7246-ab43-8b8e1a88467b',1,'2026-12-07T06:08:36.780724Z','created',NULL,NULL,'{"name":{"from":null,"to":"Eeva Idempotent"},"email":{"from":null,"to":"eeva@example.fi"}}');
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    phone       TEXT,
    business_id TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO "customers" VALUES('01a24f1e-51a7-778e-8fa3-a00bb3412829','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T06:08:36.775789Z','2026-12-07T06:08:36.775789Z',1);
INSERT INTO "customers" VALUES('01a24f1e-51a8-7dff-807a-6e2f35576f58','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T06:08:36.776716Z','2026-12-07T06:08:36.776716Z',1);
INSERT INTO "customers" VALUES('01a24f1e-51a9-7460-8a7f-607fba119cb4','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T06:08:36.777910Z','2026-12-07T06:08:36.777910Z',1);
INSERT INTO "customers" VALUES('01a24f1e-51a9-7821-8ec3-4d7781d5da17','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T06:08:36.777246Z','2026-12-07T06:08:36.777246Z',1);
INSERT INTO "customers" VALUES('01a24f1e-51aa-7814-9099-73e85387f1d4','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T06:08:36.778483Z','2026-12-07T06:08:36.779743Z',3);
INSERT INTO "customers" VALUES('01a24f1e-51ac-7246-ab43-8b8e1a88467b','Eeva Idempotent','eeva@example.fi','eeva@example.fi',NULL,NULL,'2026-12-07T06:08:36.780724Z','2026-12-07T06:08:36.780724Z',1);
CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        id      TEXT NOT NULL UNIQUE,
        type    TEXT NOT NULL,
        subject TEXT NOT NULL,
        time    TEXT NOT NULL,
        data    TEXT NOT NULL
    );
INSERT INTO "events" VALUES(1,'01a24f1e-51a8-7000-88d7-b3e70652a2f1','customer.created','01a24f1e-51a7-778e-8fa3-a00bb3412829','2026-12-07T06:08:36.775789Z','{"id":"01a24f1e-51a7-778e-8fa3-a00bb3412829","version":1,"changed":["name","email","phone","businessId"]}');
INSERT INTO "events" VALUES(2,'01a24f1e-51a8-7001-915a-5d201be1502c','customer.created','01a24f1e-51a8-7dff-807a-6e2f35576f58','2026-12-07T06:08:36.776716Z','{"id":"01a24f1e-51a8-7dff-807a-6e2f35576f58","version":1,"changed":["name","email"]}');
INSERT INTO "events" VALUES(3,'01a24f1e-51a9-7000-99b2-91c465637bda','customer.created','01a24f1e-51a9-7821-8ec3-4d7781d5da17','2026-12-07T06:08:36.777246Z','{"id":"01a24f1e-51a9-7821-8ec3-4d7781d5da17","version":1,"changed":["name","email","phone"]}');
INSERT INTO "events" VALUES(4,'01a24f1e-51a9-7001-b23e-753667430e0b','customer.created','01a24f1e-51a9-7460-8a7f-607fba119cb4','2026-12-07T06:08:36.777910Z','{"id":"01a24f1e-51a9-7460-8a7f-607fba119cb4","version":1,"changed":["name","email","businessId"]}');
INSERT INTO "events" VALUES(5,'01a24f1e-51aa-7000-9a90-87779888cfb1','customer.created','01a24f1e-51aa-7814-9099-73e85387f1d4','2026-12-07T06:08:36.778483Z','{"id":"01a24f1e-51aa-7814-9099-73e85387f1d4","version":1,"changed":["name","email"]}');
INSERT INTO "events" VALUES(6,'01a24f1e-51ab-7000-90bb-cfc86fe38780','customer.updated','01a24f1e-51aa-7814-9099-73e85387f1d4','2026-12-07T06:08:36.779101Z','{"id":"01a24f1e-51aa-7814-9099-73e85387f1d4","version":2,"changed":["phone"]}');
INSERT INTO "events" VALUES(7,'01a24f1e-51ab-7001-bb91-ce38fd1f16b8','customer.updated','01a24f1e-51aa-7814-9099-73e85387f1d4','2026-12-07T06:08:36.779743Z','{"id":"01a24f1e-51aa-7814-9099-73e85387f1d4","version":3,"changed":["name"]}');
INSERT INTO "events" VALUES(8,'01a24f1e-51ac-7000-b031-986baa6af824','customer.created','01a24f1e-51ac-7246-ab43-8b8e1a88467b','2026-12-07T06:08:36.780724Z','{"id":"01a24f1e-51ac-7246-ab43-8b8e1a88467b","version":1,"changed":["name","email"]}');
CREATE TABLE idempotency_counts (
        owner TEXT PRIMARY KEY,
        live  INTEGER NOT NULL
    ) WITHOUT ROWID;
INSERT INTO "idempotency_counts" VALUES('',4);
INSERT INTO "idempotency_counts" VALUES('*',4);
CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    token       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      INTEGER,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL,
    customer_id TEXT, owner TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
INSERT INTO "idempotency_keys" VALUES('-','create-3','fp-create-3','token-3',4102444800,409,'[["Content-Type","application/problem+json"]]',X'7B227469746C65223A22456D61696C20616C726561647920696E20757365222C22737461747573223A3430397D',NULL,'');
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-1','fp-create-1','token-1',4102444800,201,'[["Location","/customers/01a24f1e-51ac-7246-ab43-8b8e1a88467b"],["Content-Type","application/json"]]',X'7B226964223A2230316132346631652D353161632D373234362D616234332D386238653161383834363762222C226E616D65223A2245657661204964656D706F74656E74227D','01a24f1e-51ac-7246-ab43-8b8e1a88467b','');
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-2','fp-create-2','token-2',4102444800,NULL,'[]',X'',NULL,'');
INSERT INTO "idempotency_keys" VALUES('key-fp-beta','create-4','fp-create-4','token-4',10,NULL,'[]',X'',NULL,'');
CREATE TABLE webhook_deliveries (
        url        TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        subject    TEXT NOT NULL,
        state      TEXT NOT NULL,
        attempts   INTEGER NOT NULL,
        first_at   REAL NOT NULL,
        next_at    REAL NOT NULL,
        last_error TEXT,
        PRIMARY KEY (url, seq)
    ) WITHOUT ROWID;
CREATE TABLE webhook_endpoints (
        url         TEXT PRIMARY KEY,
        after_seq   INTEGER NOT NULL,
        disabled_at TEXT
    ) WITHOUT ROWID;
CREATE TABLE webhook_lease (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_owner ON idempotency_keys (owner, expires_at);
CREATE TRIGGER idempotency_keys_counted AFTER INSERT ON idempotency_keys BEGIN
        INSERT INTO idempotency_counts (owner, live) VALUES (NEW.owner, 1), ('*', 1)
            ON CONFLICT (owner) DO UPDATE SET live = live + 1;
    END;
CREATE TRIGGER idempotency_keys_uncounted AFTER DELETE ON idempotency_keys BEGIN
        UPDATE idempotency_counts SET live = live - 1 WHERE owner IN (OLD.owner, '*');
        DELETE FROM idempotency_counts WHERE owner IN (OLD.owner, '*') AND live <= 0;
    END;
CREATE INDEX idempotency_keys_customer ON idempotency_keys (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX customer_history_at ON customer_history (at);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_subject ON events (subject, seq);
CREATE INDEX webhook_deliveries_line ON webhook_deliveries (url, subject, seq);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('events',8);
COMMIT;
PRAGMA user_version = 7;

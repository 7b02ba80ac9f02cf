-- Schema version 6, made by the code of commit 87f0f36
-- with tests/data/make_schema_fixture.py 6; do not edit by hand.
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
INSERT INTO "customer_history" VALUES('01a24ec7-64df-7023-8d06-9d9997cce37c',1,'2026-12-07T04:33:40.063926Z','created',NULL,NULL,'{"name":{"from":null,"to":"Bob Builder"},"email":{"from":null,"to":"bob@example.com"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64df-741a-b9d7-bc47a4e20c8b',1,'2026-12-07T04:33:40.063028Z','created',NULL,NULL,'{"name":{"from":null,"to":"Aino Mäkelä"},"email":{"from":null,"to":"Aino.Makela@Example.fi"},"phone":{"from":null,"to":"+358 40 1234567"},"businessId":{"from":null,"to":"0112038-9"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64e0-7e66-850a-b1cb7a4cf5fb',1,'2026-12-07T04:33:40.064633Z','created',NULL,NULL,'{"name":{"from":null,"to":"Jürgen Groß"},"email":{"from":null,"to":"juergen@example.de"},"phone":{"from":null,"to":"+49 30 1234567"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64e1-7aaa-bace-5f96387f7576',1,'2026-12-07T04:33:40.065292Z','created',NULL,NULL,'{"name":{"from":null,"to":"陈伟 (Chen Wei)"},"email":{"from":null,"to":"chen.wei@example.cn"},"businessId":{"from":null,"to":"2331972-7"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64e2-7d6b-9fe8-bf5a9d1ab09c',1,'2026-12-07T04:33:40.066564Z','created',NULL,NULL,'{"name":{"from":null,"to":"Dana O''Neil"},"email":{"from":null,"to":"dana@example.ie"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64e2-7d6b-9fe8-bf5a9d1ab09c',2,'2026-12-07T04:33:40.067341Z','updated',NULL,NULL,'{"phone":{"from":null,"to":"+353 1 234 5678"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64e2-7d6b-9fe8-bf5a9d1ab09c',3,'2026-12-07T04:33:40.068458Z','updated',NULL,NULL,'{"name":{"from":"Dana O''Neil","to":"Dana Ó Néill"}}');
INSERT INTO "customer_history" VALUES('01a24ec7-64e7-7078-8cae-4f21960507b4',1,'2026-12-07T04:33:40.071218Z','created',NULL,NULL,'{"name":{"from":null,"to":"Eeva Idempotent"},"email":{"from":null,"to":"eeva@example.fi"}}');
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
INSERT INTO "customers" VALUES('01a24ec7-64df-7023-8d06-9d9997cce37c','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T04:33:40.063926Z','2026-12-07T04:33:40.063926Z',1);
INSERT INTO "customers" VALUES('01a24ec7-64df-741a-b9d7-bc47a4e20c8b','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T04:33:40.063028Z','2026-12-07T04:33:40.063028Z',1);
INSERT INTO "customers" VALUES('01a24ec7-64e0-7e66-850a-b1cb7a4cf5fb','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T04:33:40.064633Z','2026-12-07T04:33:40.064633Z',1);
INSERT INTO "customers" VALUES('01a24ec7-64e1-7aaa-bace-5f96387f7576','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T04:33:40.065292Z','2026-12-07T04:33:40.065292Z',1);
INSERT INTO "customers" VALUES('01a24ec7-64e2-7d6b-9fe8-bf5a9d1ab09c','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T04:33:40.066564Z','2026-12-07T04:33:40.068458Z',3);
INSERT INTO "customers" VALUES('01a24ec7-64e7-7078-8cae-4f21960507b4','Eeva Idempotent','eeva@example.fi','eeva@example.fi',NULL,NULL,'2026-12-07T04:33:40.071218Z','2026-12-07T04:33:40.071218Z',1);
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
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-1','fp-create-1','token-1',4102444800,201,'[["Location","/customers/01a24ec7-64e7-7078-8cae-4f21960507b4"],["Content-Type","application/json"]]',X'7B226964223A2230316132346563372D363465372D373037382D386361652D346632313936303530376234222C226E616D65223A2245657661204964656D706F74656E74227D','01a24ec7-64e7-7078-8cae-4f21960507b4','');
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-2','fp-create-2','token-2',4102444800,NULL,'[]',X'',NULL,'');
INSERT INTO "idempotency_keys" VALUES('key-fp-beta','create-4','fp-create-4','token-4',10,NULL,'[]',X'',NULL,'');
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
COMMIT;
PRAGMA user_version = 6;

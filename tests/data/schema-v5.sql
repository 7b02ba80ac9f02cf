-- Schema version 5, made by the code of commit d76c241
-- with tests/data/make_schema_fixture.py 5; do not edit by hand.
BEGIN TRANSACTION;
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
INSERT INTO "customers" VALUES('01a24ec2-f8a6-713f-9fc0-f3c7a88e0896','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T04:28:50.214782Z','2026-12-07T04:28:50.214782Z',1);
INSERT INTO "customers" VALUES('01a24ec2-f8a7-7228-90d2-acd84e717622','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T04:28:50.215651Z','2026-12-07T04:28:50.215651Z',1);
INSERT INTO "customers" VALUES('01a24ec2-f8a7-79d8-bfb6-1ccb2d6f9b54','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T04:28:50.215225Z','2026-12-07T04:28:50.215225Z',1);
INSERT INTO "customers" VALUES('01a24ec2-f8a8-7842-9cb9-0fdd6382e33d','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T04:28:50.216012Z','2026-12-07T04:28:50.216012Z',1);
INSERT INTO "customers" VALUES('01a24ec2-f8a8-7b79-9f36-4b2a33fd8eea','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T04:28:50.216361Z','2026-12-07T04:28:50.217139Z',3);
INSERT INTO "customers" VALUES('01a24ec2-f8aa-742e-96ce-fd1a406934d6','Eeva Idempotent','eeva@example.fi','eeva@example.fi',NULL,NULL,'2026-12-07T04:28:50.218101Z','2026-12-07T04:28:50.218101Z',1);
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
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-1','fp-create-1','token-1',4102444800,201,'[["Location","/customers/01a24ec2-f8aa-742e-96ce-fd1a406934d6"],["Content-Type","application/json"]]',X'7B226964223A2230316132346563322D663861612D373432652D393663652D666431613430363933346436222C226E616D65223A2245657661204964656D706F74656E74227D','01a24ec2-f8aa-742e-96ce-fd1a406934d6','');
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
COMMIT;
PRAGMA user_version = 5;

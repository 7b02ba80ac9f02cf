-- Schema version 3, made by the code of commit 1931d4f
-- with tests/data/make_schema_fixture.py 3; do not edit by hand.
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
INSERT INTO "customers" VALUES('01a24eaa-f6dd-70ef-9453-d87dc6d56ae3','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T04:02:36.893513Z','2026-12-07T04:02:36.893513Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f6e1-7a49-9b7e-52af729a108f','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T04:02:36.897468Z','2026-12-07T04:02:36.897468Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f6e5-796c-8c75-dd4c4112c263','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T04:02:36.901475Z','2026-12-07T04:02:36.901475Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f6e9-7f96-b7ae-b2e6333686e6','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T04:02:36.905461Z','2026-12-07T04:02:36.905461Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f6ed-7628-8560-8a6bee85ef37','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T04:02:36.909460Z','2026-12-07T04:02:36.916929Z',3);
INSERT INTO "customers" VALUES('01a24eaa-f6f9-757f-a775-e2f27c69ae93','Eeva Idempotent','eeva@example.fi','eeva@example.fi',NULL,NULL,'2026-12-07T04:02:36.921466Z','2026-12-07T04:02:36.921466Z',1);
CREATE TABLE idempotency_keys (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    token       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      INTEGER,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL,
    customer_id TEXT,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
INSERT INTO "idempotency_keys" VALUES('-','create-3','fp-create-3','token-3',4102444800,409,'[["Content-Type","application/problem+json"]]',X'7B227469746C65223A22456D61696C20616C726561647920696E20757365222C22737461747573223A3430397D',NULL);
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-1','fp-create-1','token-1',4102444800,201,'[["Location","/customers/01a24eaa-f6f9-757f-a775-e2f27c69ae93"],["Content-Type","application/json"]]',X'7B226964223A2230316132346561612D663666392D373537662D613737352D653266323763363961653933222C226E616D65223A2245657661204964656D706F74656E74227D','01a24eaa-f6f9-757f-a775-e2f27c69ae93');
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-2','fp-create-2','token-2',4102444800,NULL,'[]',X'',NULL);
INSERT INTO "idempotency_keys" VALUES('key-fp-beta','create-4','fp-create-4','token-4',10,NULL,'[]',X'',NULL);
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
COMMIT;
PRAGMA user_version = 3;

-- Schema version 4, made by the code of commit 0c4bbb4
-- with tests/data/make_schema_fixture.py 4; do not edit by hand.
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
INSERT INTO "customers" VALUES('01a24ec1-5937-7499-a79a-3d76f3bb77f3','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T04:27:03.863757Z','2026-12-07T04:27:03.863757Z',1);
INSERT INTO "customers" VALUES('01a24ec1-5937-7b9f-946e-8158296d0972','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T04:27:03.863147Z','2026-12-07T04:27:03.863147Z',1);
INSERT INTO "customers" VALUES('01a24ec1-5938-752d-b846-089fb3c43286','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T04:27:03.864820Z','2026-12-07T04:27:03.864820Z',1);
INSERT INTO "customers" VALUES('01a24ec1-5938-75f4-b1b0-328be92433ab','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T04:27:03.864335Z','2026-12-07T04:27:03.864335Z',1);
INSERT INTO "customers" VALUES('01a24ec1-5939-7aae-b332-95b7d1d7dd9e','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T04:27:03.865301Z','2026-12-07T04:27:03.866372Z',3);
INSERT INTO "customers" VALUES('01a24ec1-593b-7bf1-aac1-848ae279055e','Eeva Idempotent','eeva@example.fi','eeva@example.fi',NULL,NULL,'2026-12-07T04:27:03.867519Z','2026-12-07T04:27:03.867519Z',1);
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
INSERT INTO "idempotency_keys" VALUES('key-fp-alpha','create-1','fp-create-1','token-1',4102444800,201,'[["Location","/customers/01a24ec1-593b-7bf1-aac1-848ae279055e"],["Content-Type","application/json"]]',X'7B226964223A2230316132346563312D353933622D376266312D616163312D383438616532373930353565222C226E616D65223A2245657661204964656D706F74656E74227D','01a24ec1-593b-7bf1-aac1-848ae279055e','');
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
COMMIT;
PRAGMA user_version = 4;

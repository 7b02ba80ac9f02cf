-- Schema version 1, made by the code of commit 9ed3694
-- with tests/data/make_schema_fixture.py 1; do not edit by hand.
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
);
INSERT INTO "customers" VALUES('01a24eaa-f225-77cc-99a8-bbaf086bd1dc','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T04:02:35.685521Z','2026-12-07T04:02:35.685521Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f229-715d-ade8-742a280de169','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T04:02:35.689491Z','2026-12-07T04:02:35.689491Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f22d-7138-a0df-4972fa64e1fc','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T04:02:35.693480Z','2026-12-07T04:02:35.693480Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f231-732a-bfc5-f13e2282045b','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T04:02:35.697481Z','2026-12-07T04:02:35.697481Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f235-76e9-b6ee-946333277316','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T04:02:35.701479Z','2026-12-07T04:02:35.709489Z',3);
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
COMMIT;
PRAGMA user_version = 1;

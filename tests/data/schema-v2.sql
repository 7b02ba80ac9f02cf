-- Schema version 2, made by the code of commit ffa5266
-- with tests/data/make_schema_fixture.py 2; do not edit by hand.
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
INSERT INTO "customers" VALUES('01a24eaa-f479-7a7f-bef8-9fca74603ef6','Aino Mäkelä','Aino.Makela@Example.fi','aino.makela@example.fi','+358 40 1234567','0112038-9','2026-12-07T04:02:36.281524Z','2026-12-07T04:02:36.281524Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f47d-70a1-ad8e-6c12d195779e','Bob Builder','bob@example.com','bob@example.com',NULL,NULL,'2026-12-07T04:02:36.285483Z','2026-12-07T04:02:36.285483Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f481-77d9-9548-b5566cb1a215','Jürgen Groß','juergen@example.de','juergen@example.de','+49 30 1234567',NULL,'2026-12-07T04:02:36.289474Z','2026-12-07T04:02:36.289474Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f485-7b92-97ae-41d42767750c','陈伟 (Chen Wei)','chen.wei@example.cn','chen.wei@example.cn',NULL,'2331972-7','2026-12-07T04:02:36.293475Z','2026-12-07T04:02:36.293475Z',1);
INSERT INTO "customers" VALUES('01a24eaa-f489-7af9-b3d8-e4c3ae591637','Dana Ó Néill','dana@example.ie','dana@example.ie','+353 1 234 5678',NULL,'2026-12-07T04:02:36.297463Z','2026-12-07T04:02:36.305469Z',3);
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
CREATE INDEX customers_business ON customers (business_id, created_at, id);
COMMIT;
PRAGMA user_version = 2;

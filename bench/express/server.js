'use strict';
// The seed's stack as a yardstick: Express 4 and better-sqlite3, in-memory, answering the
// routes `make bench` drives (create, get one, a page of the list with limit and cursor,
// health) the way a plain Express service would: a JSON body checked field by field,
// 400 and 409 as problem documents, ETag and Location on a create, a Link to the next page.
// Run: PORT=3200 node bench/express/server.js (bench/procs.py pins it to a core).

const crypto = require('node:crypto');
const express = require('express');
const Database = require('better-sqlite3');

const db = new Database(':memory:');
db.exec(`
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
  CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
  CREATE INDEX customers_listing ON customers (created_at, id);
  CREATE INDEX customers_business ON customers (business_id, created_at, id);
`);

const insert = db.prepare(
  `INSERT INTO customers (id, name, email, email_key, phone, business_id, created_at,
     updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)`,
);
const selectOne = db.prepare('SELECT * FROM customers WHERE id = ?');
const firstPage = db.prepare('SELECT * FROM customers ORDER BY created_at, id LIMIT ?');
const nextPage = db.prepare(
  'SELECT * FROM customers WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?',
);

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^[0-9 +()-]{1,32}$/;
const BUSINESS_ID = /^[0-9]{7}-[0-9]$/;
const FIELDS = new Set(['name', 'email', 'phone', 'businessId']);

function publicShape(row) {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    phone: row.phone,
    businessId: row.business_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function problem(res, status, title, detail, errors) {
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', title, status, detail, errors }));
}

function checkCustomer(body) {
  const errors = [];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return [{ field: 'body', message: 'must be a JSON object' }];
  }
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key)) errors.push({ field: key, message: 'is not a known field' });
  }
  const text = (name, pattern, required, max) => {
    const value = body[name];
    if (value === undefined || value === null) {
      if (required) errors.push({ field: name, message: 'is required' });
      return null;
    }
    const trimmed = typeof value === 'string' ? value.trim() : null;
    if (trimmed === null || trimmed.length === 0 || trimmed.length > max || !pattern.test(trimmed)) {
      errors.push({ field: name, message: 'is not valid' });
    }
    return trimmed;
  };
  const customer = {
    name: text('name', /^[^\x00-\x1f\x7f]+$/, true, 200),
    email: text('email', EMAIL, true, 254),
    phone: text('phone', PHONE, false, 32),
    businessId: text('businessId', BUSINESS_ID, false, 9),
  };
  return errors.length ? errors : customer;
}

function cursorOf(row) {
  return Buffer.from(JSON.stringify([row.created_at, row.id])).toString('base64url');
}

function positionOf(cursor) {
  try {
    const position = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(position) && position.length === 2 && position.every((p) => typeof p === 'string')) {
      return position;
    }
  } catch {
    // falls through to the 400
  }
  return null;
}

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '64kb' }));

app.post('/customers', (req, res) => {
  const customer = checkCustomer(req.body);
  if (Array.isArray(customer)) {
    problem(res, 400, 'Bad Request', 'The body has invalid fields.', customer);
    return;
  }
  const now = new Date().toISOString();
  const id = crypto.randomUUID();
  try {
    insert.run(id, customer.name, customer.email, customer.email.toLowerCase(),
      customer.phone, customer.businessId, now, now);
  } catch (error) {
    if (error.code === 'SQLITE_CONSTRAINT_UNIQUE') {
      problem(res, 409, 'Conflict', 'Another customer already uses this email.');
      return;
    }
    throw error;
  }
  res
    .status(201)
    .location(`/customers/${id}`)
    .set('ETag', '"1"')
    .json({ id, ...customer, createdAt: now, updatedAt: now });
});

app.get('/customers', (req, res) => {
  const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    problem(res, 400, 'Bad Request', 'The query is not valid.', [
      { field: 'limit', message: 'must be an integer from 1 to 500' },
    ]);
    return;
  }
  let rows;
  if (req.query.cursor === undefined) {
    rows = firstPage.all(limit + 1);
  } else {
    const position = positionOf(String(req.query.cursor));
    if (position === null) {
      problem(res, 400, 'Bad Request', 'The cursor is not valid.');
      return;
    }
    rows = nextPage.all(position[0], position[1], limit + 1);
  }
  if (rows.length > limit) {
    rows = rows.slice(0, limit);
    const cursor = cursorOf(rows[rows.length - 1]);
    res.set('Link', `</customers?limit=${limit}&cursor=${cursor}>; rel="next"`);
  }
  res.json(rows.map(publicShape));
});

app.get('/customers/:id', (req, res) => {
  const row = selectOne.get(req.params.id);
  if (row === undefined) {
    problem(res, 404, 'Not Found', 'No customer has this id.');
    return;
  }
  res.set('ETag', `"${row.version}"`).json(publicShape(row));
});

app.get('/health', (req, res) => {
  db.prepare('SELECT 1').get();
  res.json({ status: 'ok' });
});

app.use((error, req, res, next) => {
  if (error.type === 'entity.parse.failed') {
    problem(res, 400, 'Bad Request', 'The body is not valid JSON.');
    return;
  }
  next(error);
});

const server = app.listen(Number(process.env.PORT || 3200), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));

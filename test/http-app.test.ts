// The HTTP foundation: error shape and codes, hardening options, health and readiness, OpenAPI.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/api/app.ts';
import { CustosError, StoreError } from '../src/errors.ts';
import { captureLogger } from './helpers/log-capture.ts';

describe('http app', () => {
  let app: FastifyInstance;
  let dbUp = true;
  const logs = captureLogger();
  before(async () => {
    app = await buildApp({
      logger: logs.logger,
      version: '9.9.9',
      bodyLimit: 1024,
      readiness: [
        {
          name: 'database',
          check: async () => {
            if (!dbUp) throw new StoreError('CUSTOS_STORE_UNAVAILABLE', 'down');
          },
        },
        { name: 'bus', check: async () => {} },
      ],
      routes: [
        async (a) => {
          a.post('/test/echo', async (req) => ({ got: req.body }));
          a.get('/test/boom', async () => {
            throw new Error('internal detail: connection to 10.0.0.5 refused, password=hunter2');
          });
          a.get('/test/custos', async () => {
            throw new CustosError('CUSTOS_CONFLICT', 'already exists', { details: { id: 'x1' } });
          });
          a.get('/test/internal-custos', async () => {
            throw new CustosError('CUSTOS_INTERNAL', 'invariant broken in ledger row 17');
          });
        },
      ],
    });
    await app.ready();
  });
  after(() => app.close());

  test('GET /healthz is 200 with version', async () => {
    const r = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { status: 'ok', version: '9.9.9' });
    assert.ok(r.headers['x-request-id']);
  });

  test('GET /readyz is 200 when all parts answer, 503 naming the failing part', async () => {
    dbUp = true;
    const ok = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ok.statusCode, 200);
    dbUp = false;
    const bad = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(bad.statusCode, 503);
    const body = bad.json();
    assert.deepEqual(body.failing, ['database']);
    assert.equal(body.error.code, 'CUSTOS_NOT_READY');
    assert.match(body.error.message, /database/);
    dbUp = true;
  });

  test('OpenAPI 3.1 document is served and lists the routes', async () => {
    const r = await app.inject({ method: 'GET', url: '/docs/json' });
    assert.equal(r.statusCode, 200);
    const doc = r.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/healthz']?.get);
    assert.ok(doc.paths['/readyz']?.get);
    const ui = await app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(ui.statusCode, 200);
  });

  test('unknown route → 404 CUSTOS_NOT_FOUND with request id', async () => {
    const r = await app.inject({
      method: 'GET',
      url: '/nope',
      headers: { 'x-request-id': 'req-abc-123456' },
    });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.code, 'CUSTOS_NOT_FOUND');
    assert.equal(r.json().error.requestId, 'req-abc-123456');
    assert.equal(r.headers['x-request-id'], 'req-abc-123456');
  });

  test('a forged request id with odd characters is replaced', async () => {
    const r = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'x\n{"evil":1}' },
    });
    assert.notEqual(r.headers['x-request-id'], 'x\n{"evil":1}');
  });

  test('invalid JSON → 400 CUSTOS_BAD_JSON; prototype poisoning refused', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'CUSTOS_BAD_JSON');
    const proto = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__":{"admin":true}}',
    });
    assert.equal(proto.statusCode, 400);
    assert.equal(proto.json().error.code, 'CUSTOS_BAD_JSON');
    const ctor = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"constructor":{"prototype":{"admin":true}}}',
    });
    assert.equal(ctor.statusCode, 400);
  });

  test('body over bodyLimit → 413 CUSTOS_PAYLOAD_TOO_LARGE', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ x: 'a'.repeat(5000) }),
    });
    assert.equal(r.statusCode, 413);
    assert.equal(r.json().error.code, 'CUSTOS_PAYLOAD_TOO_LARGE');
  });

  test('unsupported content type → 415', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/x-unknown' },
      payload: 'x',
    });
    assert.equal(r.statusCode, 415);
    assert.equal(r.json().error.code, 'CUSTOS_UNSUPPORTED_MEDIA_TYPE');
  });

  test('a CustosError keeps its code, status, message and details', async () => {
    const r = await app.inject({ method: 'GET', url: '/test/custos' });
    assert.equal(r.statusCode, 409);
    assert.deepEqual(r.json().error.details, { id: 'x1' });
    assert.equal(r.json().error.message, 'already exists');
  });

  test('5xx responses never carry the internal message', async () => {
    for (const url of ['/test/boom', '/test/internal-custos']) {
      const r = await app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 500);
      const body = r.json();
      assert.equal(body.error.code, 'CUSTOS_INTERNAL');
      assert.doesNotMatch(r.body, /10\.0\.0\.5|hunter2|ledger row 17/);
      assert.equal(body.error.details, undefined);
    }
    // …but the log has the error (with the secret scrubbed), keyed by request id
    assert.match(logs.text(), /ledger row 17/);
    assert.doesNotMatch(logs.text(), /hunter2/);
  });
});

// The `custos api` role on real PostgreSQL, NATS JetStream and Redis: readiness covers all three.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { startApi } from '../src/roles/api.ts';
import { openRuntime } from '../src/roles/runtime.ts';
import { captureLogger } from './helpers/log-capture.ts';

const db = process.env['CUSTOS_TEST_DATABASE_URL'];
const nats = process.env['CUSTOS_TEST_NATS_URL'];
const redis = process.env['CUSTOS_TEST_REDIS_URL'];
const missing = [
  !db && 'CUSTOS_TEST_DATABASE_URL',
  !nats && 'CUSTOS_TEST_NATS_URL',
  !redis && 'CUSTOS_TEST_REDIS_URL',
]
  .filter(Boolean)
  .join(', ');

test('custos api on PostgreSQL + NATS + Redis: /readyz names all three', {
  skip: missing ? `${missing} not set` : undefined,
}, async () => {
  const config = loadConfig({
    env: { CUSTOS_DATABASE_URL: db!, CUSTOS_NATS_URL: nats!, CUSTOS_REDIS_URL: redis!, CUSTOS_PORT: '0' },
    cwd: '/nonexistent',
  });
  const { logger } = captureLogger('info');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const runtime = await openRuntime(config, logger, { migrate: true, schema });
  const api = await startApi(config, logger, { migrate: false, runtime, handleSignals: false });
  try {
    const r = await fetch(`${api.url}/readyz`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { checks: { name: string; ok: boolean }[] };
    assert.deepEqual(body.checks.map((c) => c.name).sort(), ['database', 'nats', 'redis']);
    assert.ok(body.checks.every((c) => c.ok));
    assert.equal(runtime.database.kind, 'postgres');
    assert.equal(runtime.bus.kind, 'nats');
    assert.equal(runtime.state.kind, 'redis');
  } finally {
    await api.stop();
    const c = new pg.Client({ connectionString: db });
    await c.connect();
    await c.query(`drop schema if exists ${schema} cascade`);
    await c.end();
  }
});

test('custos api refuses to start when Redis is configured but unreachable', async () => {
  const config = loadConfig({
    env: {
      CUSTOS_REDIS_URL: 'redis://127.0.0.1:1',
      CUSTOS_DATA_DIR: `/tmp/custos-api-${randomBytes(4).toString('hex')}`,
    },
    cwd: '/nonexistent',
  });
  const { logger } = captureLogger('info');
  await assert.rejects(openRuntime(config, logger, { migrate: true }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CUSTOS_STATE_UNAVAILABLE');
    return true;
  });
});

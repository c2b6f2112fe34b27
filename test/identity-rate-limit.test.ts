// Acceptance 3 of the identity issue: a burst at 10x the limit gets 429 + Retry-After for the
// excess; repeated abuse blocks the key for the cooling period (and raises a security event); the
// limits hold across two API instances sharing one store — Redis when CUSTOS_TEST_REDIS_URL is set,
// and (always) two instances on one shared in-memory store.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Principal } from '../src/identity/principal.ts';
import { permissionsOf } from '../src/identity/rbac.ts';
import { createSharedState } from '../src/state/index.ts';
import { MemoryStateStore } from '../src/state/memory.ts';
import type { SharedState } from '../src/state/types.ts';
import { type DatabaseHandle, openDatabase } from '../src/store/database.ts';
import {
  makeOrg,
  type SecurityApp,
  startSecurityApp,
  type TestOrg,
  testKeys,
} from './helpers/identity-harness.ts';

const LIMITS = {
  CUSTOS_RATE_LIMIT_BURST: '10',
  CUSTOS_RATE_LIMIT_PER_MINUTE: '100',
  CUSTOS_RATE_LIMIT_BLOCK_SECONDS: '3',
};

function owner(org: TestOrg): Principal {
  return {
    kind: 'user',
    orgId: org.orgId,
    environment: 'production',
    userId: org.users.owner.id,
    role: 'owner',
    apiKeyId: null,
    sessionId: null,
    permissions: permissionsOf('owner'),
    mfa: true,
    rateLimit: null,
    actor: { type: 'user', id: org.users.owner.id },
  };
}

async function newKey(s: SecurityApp, org: TestOrg, burst?: number): Promise<string> {
  const k = await s.services.identity.createApiKey(
    owner(org),
    { requestId: null, ip: null },
    {
      name: 'rl',
      environment: 'sandbox',
      scopes: ['orgs:read'],
      ...(burst ? { rateLimit: { burst } } : {}),
    },
  );
  return k.key;
}

let ipCounter = 0;
/** A fresh client address per key, so tests do not share the per-IP bucket. */
const ipFor = new Map<string, string>();
function ip(key: string): string {
  if (!ipFor.has(key)) ipFor.set(key, `10.0.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`);
  return ipFor.get(key)!;
}

async function burst(apps: SecurityApp[], key: string, n: number) {
  const t0 = performance.now();
  const rs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      apps[i % apps.length]!.app.inject({
        method: 'GET',
        url: '/v1/orgs',
        headers: { authorization: `Bearer ${key}` },
        remoteAddress: ip(key),
      }),
    ),
  );
  // The burst bucket refills at `burst` per second while the requests are in flight.
  const refilled = Math.ceil(((performance.now() - t0) / 1000) * 10);
  return {
    refilled,
    ok: rs.filter((r) => r.statusCode === 200).length,
    limited: rs.filter((r) => r.statusCode === 429),
    other: rs.filter((r) => r.statusCode !== 200 && r.statusCode !== 429).map((r) => r.body),
  };
}

/** Three bursts, spaced past the retry period: three violations within the window. */
async function abuse(apps: SecurityApp[], key: string) {
  for (let i = 0; i < 3; i++) {
    await burst(apps, key, 30);
    await sleep(150);
  }
}

describe('rate limits (one instance, memory)', () => {
  let db: DatabaseHandle;
  let s: SecurityApp;
  let org: TestOrg;
  before(async () => {
    db = await openDatabase({});
    await db.migrate();
    s = await startSecurityApp({ db, env: LIMITS });
    org = await makeOrg(s.services, 'rl');
  });
  after(async () => {
    await s?.close();
    await db?.close();
  });

  test('a burst at 10x the limit: 10 pass, the excess gets 429 with Retry-After', async () => {
    const key = await newKey(s, org);
    const r = await burst([s], key, 100);
    assert.deepEqual(r.other, []);
    assert.ok(r.ok >= 10 && r.ok <= 10 + r.refilled, `${r.ok} passed (refill allowance ${r.refilled})`);
    assert.equal(r.limited.length, 100 - r.ok);
    assert.ok(r.limited.length >= 80);
    for (const x of r.limited) {
      assert.ok(Number(x.headers['retry-after']) >= 1, 'Retry-After');
      assert.match(x.json().error.code, /^CUSTOS_RATE_LIMIT(ED|_BLOCKED)$/);
    }
  });

  test('a per-key limit overrides the default', async () => {
    const key = await newKey(s, org, 3);
    const r = await burst([s], key, 20);
    assert.ok(r.ok >= 3 && r.ok <= 3 + Math.ceil(r.refilled * 0.3), `${r.ok} passed`);
  });

  test('repeated abuse blocks the key for the cooling period and raises a security event', async () => {
    const key = await newKey(s, org);
    await abuse([s], key);
    await sleep(1100); // the buckets have refilled; the block has not ended
    const blocked = await s.app.inject({
      method: 'GET',
      url: '/v1/orgs',
      headers: { authorization: `Bearer ${key}` },
      remoteAddress: ip(key),
    });
    assert.equal(blocked.statusCode, 429);
    assert.equal(blocked.json().error.code, 'CUSTOS_RATE_LIMIT_BLOCKED');
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    const other = await newKey(s, org);
    assert.equal((await burst([s], other, 1)).ok, 1, 'other keys are not affected');
    const ev = await s.app.inject({
      method: 'GET',
      url: '/v1/security-events?kind=rate_limit_blocked',
      headers: { authorization: `Bearer ${org.users.security_officer.token}` },
    });
    assert.ok(ev.json().events.length >= 1);
    assert.equal(ev.json().events[0].actor.type, 'api_key');
    await sleep(2100); // CUSTOS_RATE_LIMIT_BLOCK_SECONDS=3 in total
    assert.equal((await burst([s], key, 1)).ok, 1, 'unblocked after the cooling period');
  });

  test('per source IP: unauthenticated login attempts are limited too', async () => {
    const rs = await Promise.all(
      Array.from({ length: 40 }, () =>
        s.app.inject({
          method: 'POST',
          url: '/v1/auth/login',
          payload: { email: 'x@y.test', password: 'guess' },
          remoteAddress: '10.9.8.7',
        }),
      ),
    );
    assert.equal(rs.filter((r) => r.statusCode === 401).length, 10);
    assert.equal(rs.filter((r) => r.statusCode === 429).length, 30);
  });
});

async function twoInstances(name: string, makeStates: () => Promise<[SharedState, SharedState]>) {
  describe(`rate limits across two API instances (${name})`, () => {
    let db: DatabaseHandle;
    let a: SecurityApp;
    let b: SecurityApp;
    let states: [SharedState, SharedState];
    let org: TestOrg;
    before(async () => {
      db = await openDatabase({});
      await db.migrate();
      const keys = testKeys();
      states = await makeStates();
      // A long block here, so a slow machine cannot let it lapse before the other instance is asked.
      const env = { ...LIMITS, CUSTOS_RATE_LIMIT_BLOCK_SECONDS: '60' };
      a = await startSecurityApp({ db, env, keys, state: states[0] });
      b = await startSecurityApp({ db, env, keys, state: states[1] });
      org = await makeOrg(a.services, 'two');
    });
    after(async () => {
      await a?.close();
      await b?.close();
      for (const st of states ?? []) await st.close();
      await db?.close();
    });

    test('the burst limit is shared: 100 requests split over both → 10 pass', async () => {
      const key = await newKey(a, org);
      const r = await burst([a, b], key, 100);
      assert.deepEqual(r.other, []);
      assert.ok(r.ok >= 10 && r.ok <= 10 + r.refilled, `${r.ok} passed (refill allowance ${r.refilled})`);
      assert.ok(r.ok < 20, 'not one bucket per instance');
    });

    test('a block raised on one instance holds on the other', async () => {
      const key = await newKey(a, org);
      await abuse([a], key);
      await sleep(1100);
      const onB = await b.app.inject({
        method: 'GET',
        url: '/v1/orgs',
        headers: { authorization: `Bearer ${key}` },
        remoteAddress: '10.200.0.1',
      });
      assert.equal(onB.statusCode, 429);
      assert.equal(onB.json().error.code, 'CUSTOS_RATE_LIMIT_BLOCKED');
    });
  });
}

void twoInstances('shared memory store', async () => {
  const store = new MemoryStateStore();
  return [await createSharedState({ store }), await createSharedState({ store })];
});

const redisUrl = process.env['CUSTOS_TEST_REDIS_URL'];
if (redisUrl) {
  void twoInstances('Redis', async () => {
    const keyPrefix = `custos-test-${randomUUID()}:`;
    return [
      await createSharedState({ redisUrl, keyPrefix }),
      await createSharedState({ redisUrl, keyPrefix }),
    ];
  });
} else {
  test('rate limits across two API instances (Redis)', { skip: 'CUSTOS_TEST_REDIS_URL not set' }, () => {});
}

// Shared-state contract suite: the same tests against process memory and Redis
// (CUSTOS_TEST_REDIS_URL). Two instances on one backend stand in for two API replicas. Every run
// uses its own random key prefix and deletes its keys afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { StateError } from '../src/errors.ts';
import { createSharedState } from '../src/state/index.ts';
import { withLock } from '../src/state/lock.ts';
import { MemoryStateStore } from '../src/state/memory.ts';
import type { SharedState } from '../src/state/types.ts';

function isStateError(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof StateError, `expected StateError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

export function runStateContract(
  name: string,
  factory: (keyPrefix: string) => Promise<SharedState>,
  opts: { skip?: string | undefined; cleanup?: (keyPrefix: string) => Promise<void> } = {},
): void {
  describe(`shared-state contract [${name}]`, { skip: opts.skip ?? false }, () => {
    const prefix = `custos-test:${randomBytes(6).toString('hex')}:`;
    let a: SharedState;
    let b: SharedState;
    let n = 0;
    /** A fresh key per test. */
    const key = (tag: string) => `${tag}-${++n}`;

    before(async () => {
      a = await factory(prefix);
      b = await factory(prefix);
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await opts.cleanup?.(prefix);
    });

    test('get / set / delete, visible to another instance', async () => {
      const k = key('kv');
      assert.equal(await a.get(k), null);
      await a.set(k, 'v1');
      assert.equal(await b.get(k), 'v1');
      await b.set(k, 'v2 ünïcode {"json":true}');
      assert.equal(await a.get(k), 'v2 ünïcode {"json":true}');
      assert.equal(await a.delete(k), true);
      assert.equal(await b.delete(k), false);
      assert.equal(await b.get(k), null);
    });

    test('TTL: values expire; set without ttl replaces a ttl', async () => {
      const k1 = key('ttl');
      const k2 = key('ttl');
      await a.set(k1, 'short', { ttlMs: 150 });
      await a.set(k2, 'short', { ttlMs: 150 });
      await a.set(k2, 'long');
      assert.equal(await b.get(k1), 'short');
      await sleep(300);
      assert.equal(await b.get(k1), null);
      assert.equal(await b.get(k2), 'long');
    });

    test('setIfAbsent is atomic across instances and honours TTL', async () => {
      const k = key('nx');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).setIfAbsent(k, `w${i}`, { ttlMs: 200 })),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      assert.equal(await a.get(k), `w${winner}`);
      assert.equal(await b.setIfAbsent(k, 'late'), false);
      await sleep(300);
      assert.equal(await b.setIfAbsent(k, 'after-expiry'), true);
      assert.equal(await a.get(k), 'after-expiry');
    });

    test('incr: atomic across instances, fixed-window TTL, integer values only', async () => {
      const k = key('ctr');
      await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).incr(k)));
      assert.equal(await a.incr(k, { by: 5 }), 55);
      assert.equal(await b.incr(k, { by: -10 }), 45);
      assert.equal(await a.get(k), '45');

      const w = key('window');
      assert.equal(await a.incr(w, { ttlMs: 250 }), 1);
      await sleep(120);
      assert.equal(await b.incr(w, { ttlMs: 250 }), 2, 'later increments do not extend the window');
      await sleep(220);
      assert.equal(await a.incr(w, { ttlMs: 250 }), 1, 'window expired: counter restarts');

      const s = key('str');
      await a.set(s, 'not a number');
      await assert.rejects(a.incr(s), isStateError('CUSTOS_STATE_INVALID_ARGUMENT'));
    });

    test('token bucket: burst, refusal with retryAfterMs, refill', async () => {
      const k = key('tb');
      const p = { capacity: 5, refillPerSec: 10 };
      const r = [];
      for (let i = 0; i < 5; i++) r.push(await a.consume(k, p));
      assert.ok(r.every((x) => x.allowed));
      assert.deepEqual(
        r.map((x) => x.remaining),
        [4, 3, 2, 1, 0],
      );
      const denied = await b.consume(k, p);
      assert.equal(denied.allowed, false);
      assert.equal(denied.remaining, 0);
      assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= 100, `retryAfterMs ${denied.retryAfterMs}`);
      await sleep(denied.retryAfterMs + 30);
      assert.equal((await b.consume(k, p)).allowed, true);

      const c = key('tb-cost');
      assert.equal((await a.consume(c, { capacity: 10, refillPerSec: 1, cost: 7 })).remaining, 3);
      const big = await b.consume(c, { capacity: 10, refillPerSec: 1, cost: 7 });
      assert.equal(big.allowed, false);
      assert.ok(big.retryAfterMs > 3000 && big.retryAfterMs <= 4000, `retryAfterMs ${big.retryAfterMs}`);
      assert.equal((await a.consume(c, { capacity: 10, refillPerSec: 1, cost: 3 })).allowed, true);
    });

    test('token bucket holds across two instances under concurrency (two API replicas)', async () => {
      const k = key('tb-shared');
      const p = { capacity: 10, refillPerSec: 0.01 };
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).consume(k, p)));
      assert.equal(results.filter((x) => x.allowed).length, 10);
      assert.ok(results.filter((x) => !x.allowed).every((x) => x.retryAfterMs > 0));
    });

    test('token bucket rejects impossible parameters', async () => {
      const k = key('tb-bad');
      for (const p of [
        { capacity: 0, refillPerSec: 1 },
        { capacity: 5, refillPerSec: 0 },
        { capacity: 5, refillPerSec: 1, cost: 6 },
        { capacity: 5, refillPerSec: 1, cost: -1 },
        { capacity: Number.NaN, refillPerSec: 1 },
      ]) {
        await assert.rejects(
          a.consume(k, p),
          isStateError('CUSTOS_STATE_INVALID_ARGUMENT'),
          JSON.stringify(p),
        );
      }
      await assert.rejects(a.set('', 'x'), isStateError('CUSTOS_STATE_INVALID_ARGUMENT'));
      await assert.rejects(a.set('k', 'x', { ttlMs: 0 }), isStateError('CUSTOS_STATE_INVALID_ARGUMENT'));
      await assert.rejects(a.acquire('l', 1.5), isStateError('CUSTOS_STATE_INVALID_ARGUMENT'));
    });

    test('lock: exclusive across instances; only the holder releases or extends', async () => {
      const l = key('lock');
      const ta = await a.acquire(l, 5000);
      assert.ok(ta);
      assert.equal(await b.acquire(l, 5000), null);
      await assert.rejects(b.release(l, 'not-the-token'), isStateError('CUSTOS_LOCK_NOT_HELD'));
      await assert.rejects(b.extend(l, 'not-the-token', 5000), isStateError('CUSTOS_LOCK_NOT_HELD'));
      await a.extend(l, ta, 5000);
      await a.release(l, ta);
      await assert.rejects(a.release(l, ta), isStateError('CUSTOS_LOCK_NOT_HELD'));
      const tb = await b.acquire(l, 5000);
      assert.ok(tb);
      assert.notEqual(tb, ta);
      await b.release(l, tb);

      const racers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquire(l, 5000)),
      );
      assert.equal(racers.filter((t) => t !== null).length, 1);
      await a.release(l, racers.find((t) => t !== null)!);
    });

    test('lock: expires after its TTL; extend keeps it; the old holder then cannot release', async () => {
      const l = key('lock-ttl');
      const ta = (await a.acquire(l, 200))!;
      await sleep(120);
      await a.extend(l, ta, 300);
      await sleep(150);
      assert.equal(await b.acquire(l, 5000), null, 'extended lock is still held');
      await sleep(250);
      const tb = await b.acquire(l, 5000);
      assert.ok(tb, 'expired lock can be taken');
      await assert.rejects(a.release(l, ta), isStateError('CUSTOS_LOCK_NOT_HELD'));
      await assert.rejects(a.extend(l, ta, 1000), isStateError('CUSTOS_LOCK_NOT_HELD'));
      await b.release(l, tb);
    });

    test('lock: waitMs waits for the holder to release', async () => {
      const l = key('lock-wait');
      const ta = (await a.acquire(l, 5000))!;
      setTimeout(() => void a.release(l, ta), 150);
      const t0 = Date.now();
      const tb = await b.acquire(l, 5000, { waitMs: 2000, retryDelayMs: 20 });
      assert.ok(tb);
      assert.ok(Date.now() - t0 >= 100);
      const t1 = Date.now();
      assert.equal(await a.acquire(l, 5000, { waitMs: 150, retryDelayMs: 20 }), null);
      assert.ok(Date.now() - t1 >= 140);
      await b.release(l, tb);
    });

    test('withLock serialises a read-modify-write from two instances (no lost update)', async () => {
      const l = key('rmw-lock');
      const k = key('rmw');
      await a.set(k, '0');
      const bump = async (s: SharedState) => {
        await withLock(s, l, { ttlMs: 5000, waitMs: 5000, retryDelayMs: 5 }, async () => {
          const v = Number(await s.get(k));
          await sleep(2);
          await s.set(k, String(v + 1));
        });
      };
      await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 ? a : b)));
      assert.equal(await a.get(k), '20');
      const held = (await a.acquire(l, 5000))!;
      await assert.rejects(
        withLock(b, l, { ttlMs: 1000 }, async () => 1),
        isStateError('CUSTOS_LOCK_BUSY'),
      );
      await a.release(l, held);
    });

    test('key prefixes isolate deployments', async () => {
      const other = await factory(`${prefix}other:`);
      try {
        const k = key('iso');
        await a.set(k, 'mine');
        assert.equal(await other.get(k), null);
        assert.ok(await other.acquire(k, 1000));
        assert.ok(await a.acquire(k, 1000));
      } finally {
        await other.close();
      }
    });

    test('ping answers; close is idempotent and fails later calls', async () => {
      assert.equal(typeof (await a.ping()), 'number');
      const c = await factory(prefix);
      await c.close();
      await c.close();
      await assert.rejects(c.ping(), isStateError('CUSTOS_STATE_UNAVAILABLE'));
      await assert.rejects(c.get('x'), isStateError('CUSTOS_STATE_UNAVAILABLE'));
    });
  });
}

{
  const store = new MemoryStateStore();
  runStateContract('memory', (keyPrefix) => createSharedState({ store, keyPrefix }));
}
{
  const redisUrl = process.env['CUSTOS_TEST_REDIS_URL'];
  runStateContract('redis', (keyPrefix) => createSharedState({ redisUrl: redisUrl!, keyPrefix }), {
    skip: redisUrl ? undefined : 'CUSTOS_TEST_REDIS_URL not set',
    async cleanup(keyPrefix) {
      const r = new Redis(redisUrl!);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
          cursor = next;
          if (keys.length > 0) await r.del(...keys);
        } while (cursor !== '0');
      } finally {
        await r.quit();
      }
    },
  });
}

// Repository contract suite: the same tests on embedded PGlite and on real PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { DatabaseHandle } from '../src/store/database.ts';
import { MIGRATIONS } from '../src/store/migrations/index.ts';
import { IdempotencyRepository } from '../src/store/repositories/idempotency.ts';
import { InstanceRepository } from '../src/store/repositories/instance.ts';
import { databaseBackends } from './helpers/databases.ts';

for (const backend of databaseBackends()) {
  describe(`store contract [${backend.name}]`, { skip: backend.skip }, () => {
    let h: DatabaseHandle;
    before(async () => {
      h = await backend.open();
    });
    after(async () => {
      await h?.close();
    });

    test('migrations apply once, in order, and are then a no-op', async () => {
      const first = await h.migrate();
      assert.deepEqual(first.applied, Object.keys(MIGRATIONS));
      const second = await h.migrate();
      assert.deepEqual(second.applied, []);
      assert.equal(second.total, Object.keys(MIGRATIONS).length);
    });

    test('numeric(78,0) and int8 round-trip as bigint, at the extremes', async () => {
      const max = 10n ** 78n - 1n;
      const values = [0n, 1n, -1n, 2n ** 63n - 1n, 2n ** 64n, 2n ** 256n - 1n, max, -max];
      for (const v of values) {
        const { rows } = await sql<{ v: bigint }>`select ${v}::numeric(78,0) as v`.execute(h.db);
        assert.equal(typeof rows[0]!.v, 'bigint');
        assert.equal(rows[0]!.v, v);
      }
      const { rows } = await sql<{ v: bigint }>`select ${2n ** 62n}::int8 as v`.execute(h.db);
      assert.equal(rows[0]!.v, 2n ** 62n);
      await assert.rejects(sql`select ${10n ** 78n}::numeric(78,0) as v`.execute(h.db), /overflow/i);
    });

    test('instance id is created once and stable', async () => {
      const repo = new InstanceRepository(h.db);
      const [a, b] = await Promise.all([repo.ensure(), repo.ensure()]);
      assert.equal(a.instanceId, b.instanceId);
      assert.equal((await repo.ensure()).instanceId, a.instanceId);
    });

    test('idempotency: miss, hit, mismatch, expiry', async () => {
      const repo = new IdempotencyRepository(h.db);
      const now = new Date();
      assert.deepEqual(await repo.lookup('s', 'k1', 'h1'), { kind: 'miss' });
      assert.equal(
        await repo.save({
          scope: 's',
          key: 'k1',
          requestHash: 'h1',
          statusCode: 201,
          responseBody: { id: 7 },
          ttlMs: 60_000,
        }),
        true,
      );
      assert.equal(
        await repo.save({
          scope: 's',
          key: 'k1',
          requestHash: 'h2',
          statusCode: 201,
          responseBody: {},
          ttlMs: 60_000,
        }),
        false,
        'a second save for the same key must not overwrite',
      );
      const hit = await repo.lookup('s', 'k1', 'h1');
      assert.equal(hit.kind, 'hit');
      assert.deepEqual(hit.kind === 'hit' && hit.record.responseBody, { id: 7 });
      assert.equal((await repo.lookup('s', 'k1', 'h2')).kind, 'mismatch');
      assert.equal((await repo.lookup('other-scope', 'k1', 'h1')).kind, 'miss', 'scopes are isolated');
      const later = new Date(now.getTime() + 120_000);
      assert.equal((await repo.lookup('s', 'k1', 'h1', later)).kind, 'miss');
      assert.equal(await repo.deleteExpired(later), 1n);
    });

    test('transactions commit and roll back atomically', async () => {
      const repo = (db: typeof h.db) => new IdempotencyRepository(db);
      await assert.rejects(
        h.db.transaction().execute(async (tx) => {
          await repo(tx).save({
            scope: 'tx',
            key: 'a',
            requestHash: 'x',
            statusCode: 200,
            responseBody: 1,
            ttlMs: 60_000,
          });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal((await repo(h.db).lookup('tx', 'a', 'x')).kind, 'miss', 'rolled back');
      await h.db.transaction().execute(async (tx) => {
        await repo(tx).save({
          scope: 'tx',
          key: 'b',
          requestHash: 'x',
          statusCode: 200,
          responseBody: 1,
          ttlMs: 60_000,
        });
      });
      assert.equal((await repo(h.db).lookup('tx', 'b', 'x')).kind, 'hit', 'committed');
    });

    test('concurrent transactions on one key: exactly one insert wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          h.db.transaction().execute((tx) =>
            new IdempotencyRepository(tx).save({
              scope: 'race',
              key: 'k',
              requestHash: `h${i}`,
              statusCode: 200,
              responseBody: i,
              ttlMs: 60_000,
            }),
          ),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    test('ping answers', async () => {
      await h.ping();
    });
  });
}

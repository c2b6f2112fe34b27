// The PostgreSQL-backed nonce store on every database backend (PGlite always, PostgreSQL with
// CUSTOS_TEST_DATABASE_URL): consecutive nonces under concurrency, from several store instances at
// once (replicas), surviving a "restart", releases reused first, and a reservation made inside a
// caller's transaction rolled back with it (no gap).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { databaseBackends } from '../../../test/helpers/databases.ts';
import type { DatabaseHandle } from '../../store/database.ts';
import { PgNonceStore, withNonceTransaction } from './nonce-store-pg.ts';

for (const backend of databaseBackends()) {
  describe(`PgNonceStore on ${backend.name}`, { skip: backend.skip }, () => {
    let h: DatabaseHandle;
    before(async () => {
      h = await backend.open();
      await h.migrate();
    });
    after(async () => {
      await h?.close();
    });

    test('100 concurrent reservations from three store instances are consecutive, none reused', async () => {
      const stores = [new PgNonceStore(h.db), new PgNonceStore(h.db), new PgNonceStore(h.db)];
      const got = await Promise.all(
        Array.from({ length: 100 }, (_, i) => stores[i % 3]!.reserve('anvil', '0xAbC0', 7)),
      );
      assert.deepEqual(
        got.sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => 7 + i),
      );
      // A new instance (a restart) continues where the others stopped; case of the address is irrelevant.
      assert.equal(await new PgNonceStore(h.db).reserve('anvil', '0xabc0', 0), 107);
      // The chain moved on (sent elsewhere): jump forward. Other networks/addresses are independent.
      assert.equal(await stores[0]!.reserve('anvil', '0xabc0', 200), 200);
      assert.equal(await stores[0]!.reserve('other', '0xabc0', 0), 0);
    });

    test('released nonces are handed out first; the latest folds back; stale ones are dropped', async () => {
      const s = new PgNonceStore(h.db);
      for (let i = 0; i < 5; i++) await s.reserve('n', '0x01', 0); // 0..4
      await s.release('n', '0x01', 4);
      assert.deepEqual(await s.peek('n', '0x01'), { next: 4, released: [] });
      await s.release('n', '0x01', 1);
      await s.release('n', '0x01', 2);
      assert.deepEqual(await s.peek('n', '0x01'), { next: 4, released: [1, 2] });
      assert.equal(await s.reserve('n', '0x01', 0), 1);
      assert.equal(await s.reserve('n', '0x01', 3), 4); // 2 was used elsewhere (chain says 3)
      assert.deepEqual(await s.peek('n', '0x01'), { next: 5, released: [] });
      await s.release('n', '0x01', 99);
      assert.equal(await s.reserve('n', '0x01', 0), 5);
      await assert.rejects(s.reserve('n', '0x01', -1), /non-negative/);
    });

    test('a reservation inside a rolled-back transaction leaves no gap', async () => {
      const s = new PgNonceStore(h.db);
      assert.equal(await s.reserve('n', '0x02', 0), 0);
      await assert.rejects(
        h.db.transaction().execute((trx) =>
          withNonceTransaction(trx, async () => {
            assert.equal(await s.reserve('n', '0x02', 0), 1);
            throw new Error('signing step failed');
          }),
        ),
        /signing step failed/,
      );
      assert.equal(await s.reserve('n', '0x02', 0), 1);
    });
  });
}

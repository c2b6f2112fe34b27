// Acceptance 4 of the identity issue: on a 10,000-entry chain, editing, deleting, reordering or
// truncating any one row is detected with the first bad sequence number (via the privileged path
// that bypasses the trigger, as a table owner could); UPDATE/DELETE/TRUNCATE are refused by the
// trigger; and a state change whose audit entry cannot be written is not committed (fail closed).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sql, type Transaction } from 'kysely';
import { type AuditEntry, entryHash } from '../src/audit/chain.ts';
import { AuditLog } from '../src/audit/log.ts';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { loadConfig } from '../src/config.ts';
import { loadSecurityKeys } from '../src/identity/secrets.ts';
import { type DatabaseHandle, openDatabase } from '../src/store/database.ts';
import { AuditRepository } from '../src/store/repositories/audit.ts';
import { OrgRepository } from '../src/store/repositories/identity.ts';
import type { Database } from '../src/store/schema.ts';
import { runCli } from './helpers/cli.ts';
import { databaseBackends } from './helpers/databases.ts';
import { makeOrg, startSecurityApp, testKeys } from './helpers/identity-harness.ts';

const N = 10_000;

/** An audit log with the audit keys of `keys`, checkpointing every `every` entries. */
const auditLogOf = (keys: { auditHmacKey: Uint8Array; auditCheckpointKey: Uint8Array }, every: number) =>
  new AuditLog({
    hmacKey: keys.auditHmacKey,
    checkpointKey: keys.auditCheckpointKey,
    checkpointEvery: every,
  });

/** A migrated database of `backend`. */
async function openMigrated(backend: { open(): Promise<DatabaseHandle> }): Promise<DatabaseHandle> {
  const db = await backend.open();
  await db.migrate();
  return db;
}

function input(i: number) {
  return {
    orgId: i % 3 === 0 ? null : 'org-1',
    actor: { type: 'user' as const, id: `user-${i % 17}` },
    action: ['user.create', 'auth.login', 'api_key.create', 'transaction.approve'][i % 4]!,
    target: { type: 'thing', id: `t-${i}` },
    outcome: (i % 11 === 0 ? 'failure' : 'success') as 'success' | 'failure',
    requestId: `req-${i}`,
    details: {
      i,
      nested: { list: [1, 'two', null, true], unicode: 'zürich ✓ 東京', big: 10n ** 30n },
      amount: 1.5,
    },
    sensitive: { email: `person${i}@example.com` },
  };
}

/** Appends `count` entries the fast way (same encoding as append), checkpointing every 1000. */
async function bulk(db: DatabaseHandle, audit: AuditLog, count: number): Promise<void> {
  const repo = new AuditRepository(db.db);
  let head = await repo.head();
  let seq = head ? head.seq : 0n;
  let prev = head?.hash ?? '0'.repeat(64);
  while (count > 0) {
    const n = Math.min(count, 1000 - Number(seq % 1000n));
    const batch: AuditEntry[] = [];
    for (let k = 0; k < n; k++) {
      seq++;
      const e = audit.build(input(Number(seq)), seq, prev);
      batch.push(e);
      prev = e.hash;
    }
    await db.db.transaction().execute((trx) => new AuditRepository(trx).insertMany(batch));
    if (seq % 1000n === 0n) await audit.checkpointNow(db.db);
    count -= n;
    head = { seq, hash: prev };
  }
}

async function privileged(
  db: DatabaseHandle,
  fn: () => Promise<unknown>,
  table = 'audit_log',
): Promise<void> {
  await sql`alter table ${sql.table(table)} disable trigger ${sql.raw(`${table}_append_only`)}`.execute(
    db.db,
  );
  try {
    await fn();
  } finally {
    await sql`alter table ${sql.table(table)} enable trigger ${sql.raw(`${table}_append_only`)}`.execute(
      db.db,
    );
  }
}

/**
 * With audit inserts for `org.create` failing (a check constraint), an organisation insert and its
 * audit entry in one transaction — run by `run` — fail with CUSTOS_AUDIT_UNAVAILABLE and commit nothing.
 */
async function orgNotCommittedWhenAuditFails(
  db: DatabaseHandle,
  audit: AuditLog,
  run: (fn: (trx: Transaction<Database>) => Promise<void>) => Promise<unknown>,
  label: string,
): Promise<void> {
  await sql`alter table audit_log add constraint audit_test_fail check (action <> 'org.create') not valid`.execute(
    db.db,
  );
  try {
    const id = randomUUID();
    await assert.rejects(
      run(async (trx) => {
        await new OrgRepository(trx).insert({ id, name: `${label}-${id}` });
        await audit.append(trx, { orgId: id, actor: { type: 'service', id: 't' }, action: 'org.create' });
      }),
      (e: { code?: string }) => e.code === 'CUSTOS_AUDIT_UNAVAILABLE',
    );
    assert.equal(await new OrgRepository(db.db).get(id), undefined, 'org not committed');
  } finally {
    await sql`alter table audit_log drop constraint audit_test_fail`.execute(db.db);
  }
}

for (const backend of databaseBackends()) {
  describe(`audit chain [${backend.name}]`, { skip: backend.skip }, () => {
    let db: DatabaseHandle;
    const keys = testKeys();
    let audit: AuditLog;
    let pub: Uint8Array;
    const verify = (fromSeq?: bigint) =>
      verifyAuditChain(db.db, { checkpointPublicKey: pub, ...(fromSeq ? { fromSeq } : {}) });
    const row = async (seq: bigint) => (await new AuditRepository(db.db).get(seq))!;

    before(async () => {
      db = await openMigrated(backend);
      audit = auditLogOf(keys, 1000);
      pub = ed25519.getPublicKey(keys.auditCheckpointKey);
      // The first entries through the real path (one transaction each), the rest in bulk.
      for (let i = 1; i <= 25; i++) await db.db.transaction().execute((trx) => audit.append(trx, input(i)));
      await bulk(db, audit, N - 25);
    });
    after(async () => {
      await db?.close();
    });

    test(`an intact ${N}-entry chain verifies, with its signed checkpoints`, async () => {
      const r = await verify();
      assert.equal(r.ok, true, r.reason ?? '');
      assert.equal(r.checked, N);
      assert.equal(r.headSeq, BigInt(N));
      assert.equal(r.checkpointsChecked, N / 1000);
      const fromMid = await verify(5000n);
      assert.equal(fromMid.ok, true);
      assert.equal(fromMid.checked, N - 4999);
    });

    test('sensitive values are stored only as HMACs (searchable, not readable)', async () => {
      const e = await row(42n);
      assert.equal(e.details['email'], audit.protect('email', 'person42@example.com'));
      assert.doesNotMatch(JSON.stringify(e.details), /person42@example\.com/);
    });

    test('UPDATE, DELETE and TRUNCATE are refused by the database', async () => {
      for (const t of ['audit_log', 'audit_checkpoints'] as const) {
        await assert.rejects(
          sql`update ${sql.table(t)} set hash = 'x' where seq = 1000`.execute(db.db),
          /append-only/,
        );
        await assert.rejects(sql`delete from ${sql.table(t)} where seq = 1000`.execute(db.db), /append-only/);
        await assert.rejects(sql`truncate ${sql.table(t)}`.execute(db.db), /append-only/);
      }
      assert.equal((await verify()).ok, true);
    });

    for (const k of [1n, 4321n, BigInt(N)]) {
      test(`editing entry ${k} is reported at ${k}`, async () => {
        const orig = await row(k);
        await privileged(db, () =>
          db.db.updateTable('audit_log').set({ outcome: 'denied' }).where('seq', '=', k).execute(),
        );
        const r = await verify();
        assert.equal(r.firstBadSeq, k, r.reason ?? '');
        await privileged(db, () =>
          db.db.updateTable('audit_log').set({ outcome: orig.outcome }).where('seq', '=', k).execute(),
        );
        // a details edit too
        await privileged(db, () =>
          db.db
            .updateTable('audit_log')
            .set({ details: JSON.stringify({ ...orig.details, amount: 1000000 }) })
            .where('seq', '=', k)
            .execute(),
        );
        assert.equal((await verify()).firstBadSeq, k);
        await privileged(db, () =>
          db.db
            .updateTable('audit_log')
            .set({ details: JSON.stringify(orig.details) })
            .where('seq', '=', k)
            .execute(),
        );
        assert.equal((await verify()).ok, true);
      });
    }

    for (const k of [1n, 5000n, 9999n]) {
      test(`deleting entry ${k} is reported at ${k}`, async () => {
        const orig = await row(k);
        await privileged(db, () => db.db.deleteFrom('audit_log').where('seq', '=', k).execute());
        const r = await verify();
        assert.equal(r.firstBadSeq, k, r.reason ?? '');
        await new AuditRepository(db.db).insertMany([orig]);
        assert.equal((await verify()).ok, true);
      });
    }

    for (const k of [1n, 6000n, BigInt(N - 1)]) {
      test(`swapping entries ${k} and ${k + 1n} is reported at ${k}`, async () => {
        const swap = () =>
          privileged(db, async () => {
            await db.db.updateTable('audit_log').set({ seq: -1n }).where('seq', '=', k).execute();
            await db.db
              .updateTable('audit_log')
              .set({ seq: k })
              .where('seq', '=', k + 1n)
              .execute();
            await db.db
              .updateTable('audit_log')
              .set({ seq: k + 1n })
              .where('seq', '=', -1n)
              .execute();
          });
        await swap();
        const r = await verify();
        assert.equal(r.firstBadSeq, k, r.reason ?? '');
        await swap();
        assert.equal((await verify()).ok, true);
      });
    }

    for (const k of [7001n, BigInt(N)]) {
      test(`truncating the log from ${k} is reported at ${k} (signed checkpoint beyond the end)`, async () => {
        const saved = await new AuditRepository(db.db).range(k, N);
        await privileged(db, () => db.db.deleteFrom('audit_log').where('seq', '>=', k).execute());
        const r = await verify();
        assert.equal(r.firstBadSeq, k, r.reason ?? '');
        assert.match(r.reason ?? '', /truncated/);
        await new AuditRepository(db.db).insertMany(saved);
        assert.equal((await verify()).ok, true);
      });
    }

    test('a rewritten and re-hashed stretch is caught by the checkpoint that covers it', async () => {
      const saved = await new AuditRepository(db.db).range(9990n, 20);
      await privileged(db, async () => {
        let prev = (await row(9989n)).hash;
        for (const e of saved) {
          const details = e.seq === 9990n ? { ...e.details, amount: 999 } : e.details;
          const { hash: _h, ...rest } = { ...e, details, prevHash: prev };
          const hash = entryHash(rest);
          await db.db
            .updateTable('audit_log')
            .set({ details: JSON.stringify(details), prev_hash: prev, hash })
            .where('seq', '=', e.seq)
            .execute();
          prev = hash;
        }
      });
      const r = await verify();
      assert.equal(r.ok, false);
      assert.equal(r.firstBadSeq, 9001n, r.reason ?? '');
      await privileged(db, async () => {
        for (const e of saved) {
          await db.db
            .updateTable('audit_log')
            .set({ details: JSON.stringify(e.details), prev_hash: e.prevHash, hash: e.hash })
            .where('seq', '=', e.seq)
            .execute();
        }
      });
      assert.equal((await verify()).ok, true);
    });

    test('a checkpoint with a forged signature is reported', async () => {
      const [cp] = await new AuditRepository(db.db).checkpoints(3000n);
      await privileged(
        db,
        () =>
          db.db
            .updateTable('audit_checkpoints')
            .set({ signature: Buffer.from(ed25519.sign(new Uint8Array(1), randomBytes(32))).toString('hex') })
            .where('seq', '=', 3000n)
            .execute(),
        'audit_checkpoints',
      );
      const r = await verify();
      assert.equal(r.firstBadSeq, 3000n);
      assert.match(r.reason ?? '', /signature/);
      await privileged(
        db,
        () =>
          db.db
            .updateTable('audit_checkpoints')
            .set({ signature: cp!.signature })
            .where('seq', '=', 3000n)
            .execute(),
        'audit_checkpoints',
      );
      assert.equal((await verify()).ok, true);
    });

    test('fail closed: when the audit insert fails, the state change is not committed', async () => {
      // Directly: an organisation insert and its audit entry in one transaction.
      await orgNotCommittedWhenAuditFails(db, audit, (fn) => db.db.transaction().execute(fn), 'fail-closed');
      // Through the API: creating a user fails with a clear code and no user exists.
      const s = await startSecurityApp({ db, keys });
      try {
        const org = await makeOrg(s.services, 'failclosed');
        await sql`alter table audit_log add constraint audit_test_fail check (action <> 'user.create') not valid`.execute(
          db.db,
        );
        const email = `nobody-${randomUUID()}@fail.test`;
        const r = await s.app.inject({
          method: 'POST',
          url: '/v1/users',
          payload: { email, role: 'operator' },
          headers: { authorization: `Bearer ${org.users.owner.token}` },
        });
        assert.equal(r.statusCode, 503, r.body);
        assert.equal(r.json().error.code, 'CUSTOS_AUDIT_UNAVAILABLE');
        const u = await db.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst();
        assert.equal(u, undefined, 'user not committed');
      } finally {
        await sql`alter table audit_log drop constraint if exists audit_test_fail`.execute(db.db);
        await s.close();
      }
      assert.equal((await verify()).ok, true, 'the chain stays intact');
    });
  });
}

describe('custos audit verify (CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-audit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reports OK, then the first bad sequence number after tampering; --from skips earlier entries', async () => {
    const config = loadConfig({ env: { CUSTOS_DATA_DIR: dir, CUSTOS_ENV: 'test' }, cwd: '/nonexistent' });
    const keys = loadSecurityKeys(config); // generated under <dir>/secrets, as custos dev would
    const audit = auditLogOf(keys, 1000);
    let db = await openDatabase({ pgliteDir: join(dir, 'db') });
    await db.migrate();
    await bulk(db, audit, 1500);
    await db.close();

    const env = { CUSTOS_ENV: 'test' };
    const ok = runCli(['audit', 'verify', '--data-dir', dir, '--json'], env);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const okJson = JSON.parse(ok.stdout);
    assert.equal(okJson.ok, true);
    assert.equal(okJson.checked, 1500);
    assert.equal(okJson.checkpointKeyChecked, true);

    db = await openDatabase({ pgliteDir: join(dir, 'db') });
    await privileged(db, () =>
      db.db.updateTable('audit_log').set({ actor_id: 'someone-else' }).where('seq', '=', 777n).execute(),
    );
    await db.close();

    const bad = runCli(['audit', 'verify', '--data-dir', dir], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /BROKEN at sequence 777/);
    const from = runCli(['audit', 'verify', '--from', '800', '--data-dir', dir, '--json'], env);
    assert.equal(from.code, 0, from.stdout);
  });
});

for (const backend of databaseBackends()) {
  describe(`audit entries written at commit (AuditLog.transaction) [${backend.name}]`, {
    skip: backend.skip,
  }, () => {
    let db: DatabaseHandle;
    const keys = testKeys();
    let audit: AuditLog;
    const entry = (i: number) => ({
      orgId: null,
      actor: { type: 'service' as const, id: 'test' },
      action: 'test.deferred',
      target: { type: 'thing', id: `d-${i}` },
    });
    const targets = async () =>
      (
        await db.db
          .selectFrom('audit_log')
          .select(['seq', 'target_id'])
          .where('action', '=', 'test.deferred')
          .orderBy('seq')
          .execute()
      ).map((r) => r.target_id);

    before(async () => {
      db = await openMigrated(backend);
      audit = auditLogOf(keys, 4);
    });
    after(async () => {
      await db?.close();
    });

    test('entries are written in order at the end, and roll back with the transaction', async () => {
      await audit.transaction(db.db, async (trx) => {
        await audit.append(trx, entry(1));
        await audit.appendMany(trx, [entry(2), entry(3)]);
        // Not written yet: the transaction itself does not see them before its end.
        const mine = await trx
          .selectFrom('audit_log')
          .select('seq')
          .where('action', '=', 'test.deferred')
          .execute();
        assert.equal(mine.length, 0);
      });
      assert.deepEqual(await targets(), ['d-1', 'd-2', 'd-3']);
      await assert.rejects(
        audit.transaction(db.db, async (trx) => {
          await audit.append(trx, entry(4));
          throw new Error('the change fails');
        }),
        /the change fails/,
      );
      assert.deepEqual(await targets(), ['d-1', 'd-2', 'd-3'], 'nothing of the failed transaction');
      // An entry that cannot be encoded fails at once, inside the change, with the audit code.
      const circular: Record<string, unknown> = {};
      circular['self'] = circular;
      await assert.rejects(
        audit.transaction(db.db, async (trx) => {
          await audit.append(trx, { ...entry(5), details: circular });
          assert.fail('append should have thrown');
        }),
        (e: { code?: string }) => e.code === 'CUSTOS_AUDIT_UNAVAILABLE',
      );
      const r = await verifyAuditChain(db.db, {
        checkpointPublicKey: ed25519.getPublicKey(keys.auditCheckpointKey),
      });
      assert.equal(r.ok, true, r.reason ?? '');
      assert.equal(r.checkpointsChecked, 0);
    });

    test('when the audit insert fails at the end, the change is not committed', async () => {
      await orgNotCommittedWhenAuditFails(db, audit, (fn) => audit.transaction(db.db, fn), 'deferred');
    });

    test('transactions run concurrently until their entries are written; seq follows commit order', {
      skip:
        backend.name === 'pglite' ? 'PGlite has one connection: its transactions never overlap' : undefined,
    }, async () => {
      // A waits inside its body until B has committed: with the head lock taken at the start and
      // held to commit, B could not even start before A committed, and this would time out.
      let bCommitted!: () => void;
      const bDone = new Promise<void>((r) => {
        bCommitted = r;
      });
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the transactions were serialised')), 10_000).unref(),
      );
      const a = audit.transaction(db.db, async (trx) => {
        await audit.append(trx, entry(10));
        await Promise.race([bDone, timeout]);
      });
      const b = audit
        .transaction(db.db, async (trx) => {
          await audit.append(trx, entry(11));
        })
        .then(bCommitted);
      await Promise.all([a, b]);
      // B committed first, so its entry has the lower seq although A appended first.
      assert.deepEqual((await targets()).slice(-2), ['d-11', 'd-10']);
      // Many at once: every entry once, seq gap-free, chain and checkpoints intact.
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          audit.transaction(db.db, async (trx) => {
            await audit.append(trx, entry(100 + i));
            await audit.append(trx, entry(200 + i));
          }),
        ),
      );
      const rows = await db.db.selectFrom('audit_log').select('seq').orderBy('seq').execute();
      for (const [i, r] of rows.entries()) assert.equal(BigInt(r.seq), BigInt(i + 1));
      const r = await verifyAuditChain(db.db, {
        checkpointPublicKey: ed25519.getPublicKey(keys.auditCheckpointKey),
      });
      assert.equal(r.ok, true, r.reason ?? '');
      assert.ok(r.checkpointsChecked >= 20);
    });
  });
}

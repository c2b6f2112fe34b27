// A restarted replica and a replica still signing the same withdrawal: the restarted one fails the
// `signing` row only once it has not moved for longer than a signing can take, and releases its
// funds; the one still signing finds the row failed when its signature arrives and never broadcasts
// it — so released funds can never also leave on chain.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { WithdrawalService } from '../src/custody/withdrawals.ts';
import { openDatabase } from '../src/store/database.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';

describe('a withdrawal interrupted while signing (two replicas)', () => {
  let h: CustodyHarness;
  let walletId: string;
  before(async () => {
    h = await startCustodyHarness({ db: await openDatabase({}) });
    const owner = h.org.users.owner;
    const v = await h.call('POST', '/v1/vaults', owner.token, { name: 'hot', tier: 'hot' });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    await h.signPolicy(v.body.id);
    const w = await h.call('POST', '/v1/wallets', owner.token, { vaultId: v.body.id, network: 'test' });
    walletId = w.body.id;
    const a = await h.call('POST', `/v1/wallets/${walletId}/addresses`, owner.token, {});
    h.chain.faucet(a.body.address, 'TST', 1_000_000n);
    h.chain.mine(3);
    for (let i = 0; i < 3; i++) await h.custody.tick();
  });
  after(async () => {
    await h?.close();
    await h?.db.close();
  });

  test('the restarted replica fails it and releases the funds; the signer discards its signature', async () => {
    const coordinator = h.custody.service.deps.coordinator;
    const sign = coordinator.sign.bind(coordinator);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let signing!: () => void;
    const started = new Promise<void>((r) => {
      signing = r;
    });
    // This replica's signature arrives only when the test says so.
    coordinator.sign = (async (...args: Parameters<typeof sign>) => {
      signing();
      const r = await sign(...args);
      await held;
      return r;
    }) as typeof coordinator.sign;
    try {
      const dest = externalAddress(h.chain);
      const t = await h.call(
        'POST',
        '/v1/transactions',
        h.org.users.operator.token,
        { walletId, asset: 'TST', destination: dest, amount: '250000' },
        { 'idempotency-key': randomUUID() },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      await started;
      const balances = async () =>
        (await h.call('GET', `/v1/wallets/${walletId}/balances`, h.org.users.owner.token)).body.balances[0];
      assert.equal((await balances()).reserved, '251000');

      // Another replica restarts now: the row is fresh, so it is left alone for the grace period.
      const other = new WithdrawalService(h.custody.service, {
        defaultTtlSeconds: 3600,
        idempotencyTtlMs: 60_000,
        signTimeoutMs: 1000,
      });
      await other.resume();
      const stored = () =>
        h.db.db.selectFrom('transactions').selectAll().where('id', '=', t.body.id).executeTakeFirstOrThrow();
      let row = await stored();
      assert.equal(row.state, 'signing', 'a signing that may still be running is not failed');

      // Much later (the row has not moved): abandoned. Failed, funds back to available.
      await sql`update transactions set updated_at = now() - interval '1 hour' where id = ${t.body.id}`.execute(
        h.db.db,
      );
      await other.resume();
      row = await stored();
      assert.equal(row.state, 'failed');
      assert.match(row.failure ?? '', /interrupted while signing/);
      assert.equal((await balances()).reserved, '0');
      assert.equal((await balances()).available, '1000000');

      // The first replica's signature arrives: it must not be broadcast.
      release();
      await h.custody.withdrawals.idle();
      h.chain.mine(3);
      await sleep(50);
      assert.equal(await h.chain.getBalance(dest, h.chain.asset('TST')), 0n, 'nothing reached the chain');
      row = await stored();
      assert.equal(row.state, 'failed');
      assert.equal(row.signed_raw, null);
      assert.match(h.security.logs(), /signature discarded/);
      await other.stop();
    } finally {
      coordinator.sign = sign;
      release();
    }
  });
});

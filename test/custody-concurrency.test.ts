// Acceptance 2 of the custody issue, on PGlite and on PostgreSQL: the overdraw race (50 parallel
// withdrawals whose sum exceeds the balance: the accepted total never exceeds it), idempotency
// (same key + same body → same response; different body → 409), illegal transitions refused, and
// concurrent address allocation (no two requests get the same index or address).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertTransition, canTransition, TRANSITIONS, TX_STATES } from '../src/custody/state-machine.ts';
import { CustosError } from '../src/errors.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';
import { databaseBackends } from './helpers/databases.ts';

for (const backend of databaseBackends()) {
  describe(`custody concurrency and state (${backend.name})`, { skip: backend.skip }, () => {
    let h: CustodyHarness;
    let walletId: string;
    let address: string;
    const FEE = 1000n;
    before(async () => {
      h = await startCustodyHarness({ db: await backend.open() });
      const admin = h.org.users.admin;
      const v = await h.call('POST', '/v1/vaults', h.org.users.security_officer.token, {
        name: 'ops',
        tier: 'warm',
      });
      assert.equal(v.status, 201, JSON.stringify(v.body));
      const w = await h.call('POST', '/v1/wallets', admin.token, { vaultId: v.body.id, network: 'test' });
      walletId = w.body.id;
      const a = await h.call('POST', `/v1/wallets/${walletId}/addresses`, admin.token, {});
      address = a.body.address;
      h.chain.faucet(address, 'TST', 100_000n);
      h.chain.mine(3);
      await h.custody.tick();
    });
    /** `n` parallel withdrawals of 9,000 TST (+ the fee) from one wallet, by the operator. */
    const race = (wallet: string, n: number, keyPrefix: string) => {
      const destination = externalAddress(h.chain);
      return Promise.all(
        Array.from({ length: n }, (_, i) =>
          h.call(
            'POST',
            '/v1/transactions',
            h.org.users.operator.token,
            { walletId: wallet, asset: 'TST', destination, amount: '9000' },
            { 'idempotency-key': `${keyPrefix}-${i}` },
          ),
        ),
      );
    };
    after(async () => {
      await h?.close();
      await h?.db.close();
    });

    test('50 parallel withdrawals never overdraw: accepted total <= balance', async () => {
      const op = h.org.users.operator;
      // 50 × 9,000 (+1,000 fee each) = 500,000 requested against 100,000.
      const results = await race(walletId, 50, 'race');
      const ok = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status !== 201);
      for (const r of refused)
        assert.equal(r.body.error.code, 'CUSTOS_INSUFFICIENT_FUNDS', JSON.stringify(r.body));
      const accepted = BigInt(ok.length) * (9000n + FEE);
      assert.ok(accepted <= 100_000n, `accepted ${accepted}`);
      assert.equal(ok.length, 10); // exactly what fits
      const b = await h.call('GET', `/v1/wallets/${walletId}/balances`, op.token);
      assert.equal(b.body.balances[0].available, (100_000n - accepted).toString());
      assert.equal(b.body.balances[0].reserved, accepted.toString());
      // Cancel them all again: the reservation comes back.
      for (const r of ok) {
        const c = await h.call('POST', `/v1/transactions/${r.body.id}/cancel`, op.token);
        assert.equal(c.status, 200, JSON.stringify(c.body));
        assert.equal(c.body.state, 'cancelled');
      }
      const b2 = await h.call('GET', `/v1/wallets/${walletId}/balances`, op.token);
      assert.equal(b2.body.balances[0].available, '100000');
      assert.equal(b2.body.balances[0].reserved, '0');
    });

    test('several addresses: a drained first address is passed over, and a race across addresses never overdraws', async () => {
      const admin = h.org.users.admin;
      const op = h.org.users.operator;
      const v = await h.call('POST', '/v1/vaults', h.org.users.security_officer.token, {
        name: 'multi',
        tier: 'warm',
      });
      const w = await h.call('POST', '/v1/wallets', admin.token, { vaultId: v.body.id, network: 'test' });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      const addrs: string[] = [];
      for (let i = 0; i < 3; i++) {
        const a = await h.call('POST', `/v1/wallets/${w.body.id}/addresses`, admin.token, {});
        addrs.push(a.body.address);
      }
      // The first address holds too little for any of them; the next two hold 30,000 each.
      h.chain.faucet(addrs[0]!, 'TST', 5_000n);
      h.chain.faucet(addrs[1]!, 'TST', 30_000n);
      h.chain.faucet(addrs[2]!, 'TST', 30_000n);
      h.chain.mine(3);
      await h.custody.tick();
      // 16 × (9,000 + 1,000 fee) against 3 fitting in each funded address: exactly 6 accepted.
      const results = await race(w.body.id, 16, 'multi');
      const ok = results.filter((r) => r.status === 201);
      for (const r of results.filter((x) => x.status !== 201))
        assert.equal(r.body.error.code, 'CUSTOS_INSUFFICIENT_FUNDS', JSON.stringify(r.body));
      assert.equal(ok.length, 6);
      const bySource = new Map<string, number>();
      for (const r of ok) {
        const t = await h.call('GET', `/v1/transactions/${r.body.id}`, op.token);
        const src = t.body.intent.source.address as string;
        bySource.set(src, (bySource.get(src) ?? 0) + 1);
      }
      assert.equal(bySource.get(addrs[0]!), undefined);
      assert.equal(bySource.get(addrs[1]!), 3);
      assert.equal(bySource.get(addrs[2]!), 3);
      const b = await h.call('GET', `/v1/wallets/${w.body.id}/balances`, op.token);
      assert.equal(b.body.balances[0].available, (65_000n - 6n * (9000n + FEE)).toString());
      assert.equal(b.body.balances[0].reserved, (6n * (9000n + FEE)).toString());
      for (const r of ok) await h.call('POST', `/v1/transactions/${r.body.id}/cancel`, op.token);
    });

    test('idempotency: same key + body → same response; different body → 409; no key → 400', async () => {
      const op = h.org.users.operator;
      const dest = externalAddress(h.chain);
      const body = { walletId, asset: 'TST', destination: dest, amount: '100' };
      const first = await h.call('POST', '/v1/transactions', op.token, body, { 'idempotency-key': 'idem-1' });
      assert.equal(first.status, 201);
      const again = await h.call('POST', '/v1/transactions', op.token, body, { 'idempotency-key': 'idem-1' });
      assert.equal(again.status, 201);
      assert.deepEqual(again.body, first.body);
      // Parallel replays of a fresh key: one transaction only.
      const par = await Promise.all(
        Array.from({ length: 8 }, () =>
          h.call('POST', '/v1/transactions', op.token, body, { 'idempotency-key': 'idem-2' }),
        ),
      );
      assert.equal(new Set(par.map((r) => r.body.id)).size, 1, JSON.stringify(par.map((r) => r.body)));
      const diff = await h.call(
        'POST',
        '/v1/transactions',
        op.token,
        { ...body, amount: '101' },
        { 'idempotency-key': 'idem-1' },
      );
      assert.equal(diff.status, 409);
      assert.equal(diff.body.error.code, 'CUSTOS_IDEMPOTENCY_MISMATCH');
      const none = await h.call('POST', '/v1/transactions', op.token, body);
      assert.equal(none.status, 400);
      assert.equal(none.body.error.code, 'CUSTOS_IDEMPOTENCY_KEY_REQUIRED');
      const list = await h.call('GET', '/v1/transactions?limit=500', op.token);
      assert.equal(list.body.transactions.filter((t: { amount: string }) => t.amount === '100').length, 2);
    });

    test('illegal transitions are refused (API and state machine)', async () => {
      const op = h.org.users.operator;
      const t = await h.call(
        'POST',
        '/v1/transactions',
        op.token,
        { walletId, asset: 'TST', destination: externalAddress(h.chain), amount: '5' },
        { 'idempotency-key': 'illegal-1' },
      );
      const c1 = await h.call('POST', `/v1/transactions/${t.body.id}/cancel`, op.token);
      assert.equal(c1.status, 200);
      const c2 = await h.call('POST', `/v1/transactions/${t.body.id}/cancel`, op.token);
      assert.equal(c2.status, 409);
      assert.equal(c2.body.error.code, 'CUSTOS_ILLEGAL_TRANSITION');
      assert.deepEqual(c2.body.error.details, { state: 'cancelled', to: 'cancelled' });
      // Every pair not in the table is refused.
      let refused = 0;
      for (const from of TX_STATES) {
        for (const to of TX_STATES) {
          const allowed = TRANSITIONS[from].includes(to);
          assert.equal(canTransition(from, to), allowed);
          if (!allowed) {
            assert.throws(
              () => assertTransition(from, to),
              (e) => e instanceof CustosError && e.code === 'CUSTOS_ILLEGAL_TRANSITION',
            );
            refused++;
          }
        }
      }
      assert.ok(refused > 100);
      // The ledger ignores nothing: a cancelled transaction's reservation is back.
      const b = await h.call('GET', `/v1/wallets/${walletId}/balances`, op.token);
      assert.equal(b.body.balances[0].reserved, String(2 * (100 + 1000)));
    });

    test('40 concurrent address requests get 40 distinct indexes and addresses', async () => {
      const op = h.org.users.operator;
      const rs = await Promise.all(
        Array.from({ length: 40 }, () => h.call('POST', `/v1/wallets/${walletId}/addresses`, op.token, {})),
      );
      for (const r of rs) assert.equal(r.status, 201, JSON.stringify(r.body));
      const idx = rs.map((r) => r.body.index as number).sort((a, b) => a - b);
      assert.deepEqual(
        idx,
        Array.from({ length: 40 }, (_, i) => i + 1),
      ); // index 0 was taken in before()
      assert.equal(new Set(rs.map((r) => r.body.address)).size, 40);
      assert.equal(new Set(rs.map((r) => r.body.path)).size, 40);
    });
  });
}

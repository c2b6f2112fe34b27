// Acceptance 1 of the custody issue, end to end through the REST API on the test chain: a 2-of-3
// warm vault, a wallet and an address; a deposit detected and credited; a withdrawal approved with a
// locally held approver key through `custos approve` over a real socket; signed by three in-process
// MPC nodes that check the approval themselves; broadcast, confirmed and completed; the ledger sums
// to zero and matches the chain; the audit chain verifies and names the actor of every step.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { openDatabase } from '../src/store/database.ts';
import { spawnCli, waitExit } from './helpers/cli.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';

describe('custody end to end on the test chain (PGlite, 3 in-process MPC nodes)', () => {
  let h: CustodyHarness;
  before(async () => {
    h = await startCustodyHarness({ db: await openDatabase({}) });
  });
  after(async () => {
    await h?.close();
    await h?.db.close();
  });

  test('vault → wallet → address → deposit → withdrawal → approval → MPC signature → completed', async () => {
    const { org, call, chain } = h;
    const operator = org.users.operator;
    const approver = org.users.approver;

    // Vault (2-of-3, warm) with an owner-signed policy.
    const v = await call('POST', '/v1/vaults', org.users.security_officer.token, {
      name: 'treasury',
      tier: 'warm',
      threshold: 2,
      parties: 3,
    });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    assert.equal(v.body.threshold, 2);
    assert.equal(
      v.body.keys.find((k: { scheme: string }) => k.scheme === 'ecdsa-secp256k1').parties.length,
      3,
    );
    assert.equal(v.body.policySigned, false);
    await h.signPolicy(v.body.id);

    // The approver registers a key; an owner endorses it.
    const ak = await h.registerApproverKey(approver);
    await h.endorse(ak.id);

    // Wallet and address.
    const w = await call('POST', '/v1/wallets', operator.token, { vaultId: v.body.id, network: 'test' });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    const a = await call('POST', `/v1/wallets/${w.body.id}/addresses`, operator.token, { label: 'main' });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.match(a.body.path, /^m\/\d+\/\d+\/0$/);
    assert.equal(chain.validateAddress(a.body.address).valid, true);

    // Deposit: pending on detection, available after the confirmation depth (2), recorded once.
    chain.faucet(a.body.address, 'TST', 5_000_000n);
    chain.mine(1);
    await h.custody.tick();
    let b = await call('GET', `/v1/wallets/${w.body.id}/balances`, operator.token);
    assert.deepEqual(b.body.balances[0], {
      assetId: 'test:TST',
      available: '0',
      pending: '5000000',
      reserved: '0',
      total: '5000000',
    });
    chain.mine(1);
    await h.custody.tick();
    await h.custody.tick();
    b = await call('GET', `/v1/wallets/${w.body.id}/balances`, operator.token);
    assert.equal(b.body.balances[0].available, '5000000');
    const deps = await call('GET', '/v1/deposits', operator.token);
    assert.equal(deps.body.deposits.length, 1);
    assert.equal(deps.body.deposits[0].status, 'credited');

    // Withdrawal.
    const dest = externalAddress(chain);
    const t = await call(
      'POST',
      '/v1/transactions',
      operator.token,
      { walletId: w.body.id, asset: 'TST', destination: dest, amount: '1200000', memo: 'e2e' },
      { 'idempotency-key': 'e2e-1' },
    );
    assert.equal(t.status, 201, JSON.stringify(t.body));
    assert.equal(t.body.state, 'pending_approval');
    assert.equal(t.body.requiredApprovals, 1);
    assert.match(t.body.intentHash, /^[0-9a-f]{64}$/);
    b = await call('GET', `/v1/wallets/${w.body.id}/balances`, operator.token);
    assert.equal(b.body.balances[0].reserved, String(1_200_000 + 1000));

    // Approve with the locally held key through the CLI over a real socket.
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const keyFile = join(mkdtempSync(join(tmpdir(), 'custos-ak-')), 'approver.json');
    writeFileSync(keyFile, JSON.stringify(ak.key), { mode: 0o600 });
    const p = spawnCli([
      'approve',
      t.body.id,
      '--key',
      keyFile,
      '--api',
      url,
      '--token',
      approver.token,
      '--json',
    ]);
    let stdout = '';
    p.stdout?.on('data', (d) => {
      stdout += d;
    });
    let stderr = '';
    p.stderr?.on('data', (d) => {
      stderr += d;
    });
    const exit = await waitExit(p);
    assert.equal(exit.code, 0, `${stdout}\n${stderr}`);
    const approved = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.equal(approved.decision, 'approve');
    assert.equal(approved.intentHash, t.body.intentHash);

    // Signed by the MPC nodes and broadcast; confirmations complete it.
    await h.custody.withdrawals.idle();
    let tx = await call('GET', `/v1/transactions/${t.body.id}`, operator.token);
    assert.equal(tx.body.state, 'broadcast', JSON.stringify(tx.body));
    chain.mine(1);
    await h.custody.tick();
    tx = await call('GET', `/v1/transactions/${t.body.id}`, operator.token);
    assert.equal(tx.body.state, 'confirming');
    chain.mine(1);
    await h.custody.tick();
    tx = await call('GET', `/v1/transactions/${t.body.id}`, operator.token);
    assert.equal(tx.body.state, 'completed', JSON.stringify(tx.body));
    assert.equal(await chain.getBalance(dest, chain.asset('TST')), 1_200_000n);
    b = await call('GET', `/v1/wallets/${w.body.id}/balances`, operator.token);
    assert.deepEqual(b.body.balances[0], {
      assetId: 'test:TST',
      available: String(5_000_000 - 1_200_000 - 1000),
      pending: '0',
      reserved: '0',
      total: String(5_000_000 - 1_200_000 - 1000),
    });

    // Ledger: sums to zero, cached balances equal the postings, and matches the chain.
    const rec = await call('GET', '/v1/reconciliation', org.users.auditor.token);
    assert.equal(rec.status, 200, JSON.stringify(rec.body));
    assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
    assert.deepEqual(rec.body.differences, []);
    const total = await h.db.db
      .selectFrom('ledger_accounts')
      .select((eb) => eb.fn.sum<bigint>('balance').as('s'))
      .where('org_id', '=', org.orgId)
      .executeTakeFirstOrThrow();
    assert.equal(BigInt(total.s), 0n);

    // Audit: the chain verifies, and every step is there with its actor.
    const verified = await verifyAuditChain(h.db.db);
    assert.equal(verified.ok, true, verified.reason ?? '');
    const steps = await h.db.db
      .selectFrom('audit_log')
      .select(['action', 'actor_type', 'actor_id'])
      .where('target_id', '=', t.body.id)
      .orderBy('seq')
      .execute();
    assert.deepEqual(
      steps.map((s) => `${s.action}:${s.actor_type}:${s.actor_id}`),
      [
        `transaction.create:user:${operator.id}`,
        `transaction.screening:user:${operator.id}`,
        'transaction.pending_approval:service:screening',
        `transaction.approval:user:${approver.id}`,
        'transaction.approved:service:approvals',
        'transaction.signing:service:custody-worker',
        'transaction.broadcast:service:custody-worker',
        'transaction.confirming:service:chain-watcher',
        'transaction.completed:service:chain-watcher',
      ],
    );

    // Reconciliation finds a real difference: coins on chain the ledger has not seen yet (a deposit
    // not yet scanned), reported for that address and asset (difference = chain - ledger), and gone
    // once it is credited.
    h.chain.faucet(a.body.address, 'TST', 777n);
    h.chain.mine(1); // on chain; the watcher has not scanned the block yet
    const diff = await call('GET', '/v1/reconciliation', org.users.auditor.token);
    assert.equal(diff.status, 200);
    assert.deepEqual(
      diff.body.differences.map((d: { address: string; asset: string; difference: string }) => [
        d.address,
        d.asset,
        d.difference,
      ]),
      [[a.body.address, 'TST', '777']],
      JSON.stringify(diff.body),
    );
    chain.mine(3);
    for (let i = 0; i < 3; i++) await h.custody.tick();
    const healed = await call('GET', '/v1/reconciliation', org.users.auditor.token);
    assert.deepEqual(healed.body.differences, [], JSON.stringify(healed.body));
    await h.app.close();
  });
});

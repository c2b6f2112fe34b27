// Acceptance 3 of the custody issue. The control plane refuses self-approval, double approval,
// approval by a non-approver, a bad signature and an approval of a changed intent — each with its
// own error code. And the MPC nodes themselves refuse to sign a warm-vault withdrawal whose evidence
// carries a forged approval, or an approver key the control plane registered without an owner's
// signature; the genuine evidence gets a signature.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { UnsignedTransaction } from '../src/chains/types.ts';
import { MpcError } from '../src/errors.ts';
import { generateApproverKey, signWithApproverKey } from '../src/identity/approver-keys.ts';
import {
  approvalMessage,
  type CustodyEvidence,
  type Intent,
  intentHash,
  statementMessage,
} from '../src/mpc/authorizers/custody-evidence.ts';
import { openDatabase } from '../src/store/database.ts';
import { TransactionRepository } from '../src/store/repositories/custody.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';

describe('approvals: control-plane refusals and node-side verification', () => {
  let h: CustodyHarness;
  let walletId: string;
  let vaultKeyId: string;
  let approverKey: Awaited<ReturnType<CustodyHarness['registerApproverKey']>>;
  let ownerKeyId: string;
  const sign = (
    key: { privateKey: string; publicKey: string },
    decision: 'approve' | 'reject',
    hash: string,
  ) => signWithApproverKey(key as never, approvalMessage(decision, hash));

  before(async () => {
    h = await startCustodyHarness({ db: await openDatabase({}) });
    const { owner, admin, approver } = h.org.users;
    const v = await h.call('POST', '/v1/vaults', h.org.users.security_officer.token, {
      name: 'warm2',
      tier: 'warm',
      requiredApprovals: 2,
      schemes: ['ecdsa-secp256k1'],
    });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    vaultKeyId = v.body.keys[0].keyId;
    await h.signPolicy(v.body.id);
    approverKey = await h.registerApproverKey(approver);
    await h.endorse(approverKey.id);
    const keys = await h.call('GET', `/v1/approver-keys?userId=${owner.id}`, owner.token);
    ownerKeyId = keys.body.approverKeys[0].id;
    await h.endorse(ownerKeyId);
    const w = await h.call('POST', '/v1/wallets', admin.token, { vaultId: v.body.id, network: 'test' });
    walletId = w.body.id;
    const a = await h.call('POST', `/v1/wallets/${walletId}/addresses`, admin.token, {});
    h.chain.faucet(a.body.address, 'TST', 1_000_000n);
    h.chain.mine(3);
    await h.custody.tick();
  });
  after(async () => {
    await h?.close();
    await h?.db.close();
  });

  async function withdrawal(token: string, key: string) {
    const t = await h.call(
      'POST',
      '/v1/transactions',
      token,
      { walletId, asset: 'TST', destination: externalAddress(h.chain), amount: '1000' },
      { 'idempotency-key': key },
    );
    assert.equal(t.status, 201, JSON.stringify(t.body));
    assert.equal(t.body.state, 'pending_approval');
    return t.body as { id: string; intentHash: string };
  }

  test('refusals have distinct codes', async () => {
    const { owner, operator, approver } = h.org.users;
    const codes = new Set<string>();
    const expect = async (
      r: Promise<{ status: number; body: { error: { code: string } } }>,
      status: number,
      code: string,
    ) => {
      const x = await r;
      assert.equal(x.status, status, JSON.stringify(x.body));
      assert.equal(x.body.error.code, code);
      codes.add(code);
    };

    // Self-approval: the owner initiated it and tries to approve it with a valid signature.
    const own = await withdrawal(owner.token, 'self-1');
    await expect(
      h.call('POST', `/v1/transactions/${own.id}/approvals`, owner.token, {
        intentHash: own.intentHash,
        publicKey: h.ownerKey.publicKey,
        signature: sign(h.ownerKey, 'approve', own.intentHash),
      }),
      403,
      'CUSTOS_SELF_APPROVAL',
    );

    const t = await withdrawal(operator.token, 'appr-1');
    // Non-approver: a key that is not one of the caller's approver keys; and a role without the permission.
    const stranger = generateApproverKey();
    await expect(
      h.call('POST', `/v1/transactions/${t.id}/approvals`, approver.token, {
        intentHash: t.intentHash,
        publicKey: stranger.publicKey,
        signature: sign(stranger, 'approve', t.intentHash),
      }),
      403,
      'CUSTOS_APPROVAL_NOT_APPROVER',
    );
    const opDenied = await h.call('POST', `/v1/transactions/${t.id}/approvals`, operator.token, {
      intentHash: t.intentHash,
      publicKey: approverKey.key.publicKey,
      signature: sign(approverKey.key, 'approve', t.intentHash),
    });
    assert.equal(opDenied.body.error.code, 'CUSTOS_FORBIDDEN');

    // Bad signature: a rejection signature offered as an approval, and garbage.
    await expect(
      h.call('POST', `/v1/transactions/${t.id}/approvals`, approver.token, {
        intentHash: t.intentHash,
        publicKey: approverKey.key.publicKey,
        signature: sign(approverKey.key, 'reject', t.intentHash),
      }),
      400,
      'CUSTOS_APPROVAL_BAD_SIGNATURE',
    );

    // Changed intent: a valid signature over another intent hash.
    const other = await withdrawal(operator.token, 'appr-2');
    await expect(
      h.call('POST', `/v1/transactions/${t.id}/approvals`, approver.token, {
        intentHash: other.intentHash,
        publicKey: approverKey.key.publicKey,
        signature: sign(approverKey.key, 'approve', other.intentHash),
      }),
      409,
      'CUSTOS_APPROVAL_INTENT_MISMATCH',
    );

    // A good approval, then the same approver again.
    const ok = await h.call('POST', `/v1/transactions/${t.id}/approvals`, approver.token, {
      intentHash: t.intentHash,
      publicKey: approverKey.key.publicKey,
      signature: sign(approverKey.key, 'approve', t.intentHash),
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.state, 'pending_approval'); // 1 of 2
    await expect(
      h.call('POST', `/v1/transactions/${t.id}/approvals`, approver.token, {
        intentHash: t.intentHash,
        publicKey: approverKey.key.publicKey,
        signature: sign(approverKey.key, 'approve', t.intentHash),
      }),
      409,
      'CUSTOS_APPROVAL_DUPLICATE',
    );
    assert.equal(codes.size, 5);

    // A rejection by another approver (the owner here) rejects it and releases the funds.
    const rej = await h.call('POST', `/v1/transactions/${other.id}/rejections`, owner.token, {
      intentHash: other.intentHash,
      publicKey: h.ownerKey.publicKey,
      signature: sign(h.ownerKey, 'reject', other.intentHash),
    });
    assert.equal(rej.status, 201, JSON.stringify(rej.body));
    assert.equal(rej.body.state, 'rejected');
  });

  test('expiry: approvals die with the intent, a late vote is refused, the funds come back', async () => {
    const { operator, approver, owner } = h.org.users;
    const balance = async () =>
      (await h.call('GET', `/v1/wallets/${walletId}/balances`, owner.token)).body.balances[0] as {
        available: string;
        reserved: string;
      };
    const before = await balance();
    const t = await withdrawal(operator.token, 'expiry-1');
    const r = await h.call('POST', `/v1/transactions/${t.id}/approvals`, approver.token, {
      intentHash: t.intentHash,
      publicKey: approverKey.key.publicKey,
      signature: sign(approverKey.key, 'approve', t.intentHash),
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.approvals[0].valid, true);
    assert.equal(
      BigInt((await balance()).reserved),
      BigInt(before.reserved) + 2000n,
      'amount + fee reserved',
    );

    // Time passes beyond the intent's expiry (the clock is the database row's, moved back here).
    await h.db.db
      .updateTable('transactions')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', t.id)
      .execute();
    const stale = await h.call('GET', `/v1/transactions/${t.id}`, owner.token);
    assert.equal(stale.body.approvals[0].valid, false, 'an approval of an expired intent is void');
    const late = await h.call('POST', `/v1/transactions/${t.id}/approvals`, owner.token, {
      intentHash: t.intentHash,
      publicKey: h.ownerKey.publicKey,
      signature: sign(h.ownerKey, 'approve', t.intentHash),
    });
    assert.equal(late.body.error?.code, 'CUSTOS_TRANSACTION_EXPIRED', JSON.stringify(late.body));
    assert.ok(late.status >= 400 && late.status < 500);
    const done = await h.call('GET', `/v1/transactions/${t.id}`, owner.token);
    assert.equal(done.body.state, 'expired');
    assert.deepEqual(await balance(), before, 'the reservation is released');

    // The watcher's sweep expires the ones nobody touches.
    const u = await withdrawal(operator.token, 'expiry-2');
    // (A day later: the earlier tests' pending withdrawals expire with it.)
    assert.ok((await h.custody.withdrawals.expireDue(new Date(Date.now() + 25 * 3600 * 1000))) >= 1);
    assert.equal((await h.call('GET', `/v1/transactions/${u.id}`, owner.token)).body.state, 'expired');
    assert.equal((await balance()).reserved, '0', 'every reservation is released');
  });

  test('the MPC nodes verify the approvals themselves', async () => {
    const { operator, approver, owner } = h.org.users;
    const t = await withdrawal(operator.token, 'node-1');
    for (const [u, key] of [
      [approver, approverKey.key],
      [owner, h.ownerKey],
    ] as const) {
      const r = await h.call('POST', `/v1/transactions/${t.id}/approvals`, u.token, {
        intentHash: t.intentHash,
        publicKey: key.publicKey,
        signature: sign(key, 'approve', t.intentHash),
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    // Stop the worker from racing us: take the row as the control plane would before signing.
    await h.custody.withdrawals.idle();
    const row = (await new TransactionRepository(h.db.db).getById(t.id))!;
    const intent = row.intent as unknown as Intent;
    const unsigned: UnsignedTransaction = await h.chain.buildTransfer({
      from: intent.source.address,
      to: intent.destination,
      asset: h.chain.asset('TST'),
      amount: BigInt(intent.amount),
    });
    const genuine = await h.custody.withdrawals.evidence(row, unsigned);
    assert.equal(genuine.approvals.length, 2);
    const digest = unsigned.digests[0]!.digest;
    const signWith = (authorization: CustodyEvidence) =>
      h.cluster.coordinator.sign(vaultKeyId, digest, { path: intent.source.path, authorization });
    const refused = (e: unknown) => {
      assert.ok(e instanceof MpcError, String(e));
      assert.equal(e.code, 'CUSTOS_MPC_UNAUTHORIZED', e.message);
      return true;
    };

    // 1. A forged approval: the endorsed approver's key, but a signature the approver never made.
    const forgedSig = structuredClone(genuine);
    forgedSig.approvals[0]!.signature = sign(generateApproverKey(), 'approve', row.intent_hash);
    await assert.rejects(signWith(forgedSig), refused);

    // 2. An approver key the control plane registered and "endorsed" itself (not an owner's key).
    const cpKey = generateApproverKey();
    const fakeApprover = generateApproverKey();
    const statement = {
      ...genuine.approvals[0]!.endorsement.statement,
      approverKeyId: 'apk_fake',
      userId: 'usr_fake',
      publicKey: fakeApprover.publicKey,
    };
    const selfEndorsed = structuredClone(genuine);
    selfEndorsed.approvals[0] = {
      publicKey: fakeApprover.publicKey,
      signature: sign(fakeApprover, 'approve', row.intent_hash),
      endorsement: {
        statement,
        signature: signWithApproverKey(cpKey, statementMessage(statement)),
        ownerPublicKey: cpKey.publicKey,
      },
    };
    await assert.rejects(signWith(selfEndorsed), refused);

    // 3. Approvals dropped; a policy claiming "hot" signed by a non-owner; a changed intent.
    await assert.rejects(signWith({ ...genuine, approvals: [] }), refused);
    const hotPolicy = { ...genuine.policy.statement, tier: 'hot' as const, requiredApprovals: 0 };
    await assert.rejects(
      signWith({
        ...genuine,
        approvals: [],
        policy: {
          statement: hotPolicy,
          signature: signWithApproverKey(cpKey, statementMessage(hotPolicy)),
          ownerPublicKey: cpKey.publicKey,
        },
      }),
      refused,
    );
    const changed = { ...intent, destination: externalAddress(h.chain) };
    await assert.rejects(signWith({ ...genuine, intent: changed, intentHash: intentHash(changed) }), refused);

    // The genuine evidence is signed.
    const sig = await signWith(genuine);
    assert.match(sig.signature, /^[0-9a-f]{128}$/);
    assert.ok(h.chain.attachSignatures(unsigned, [{ signature: Buffer.from(sig.signature, 'hex') }]).txId);

    // 4. The nodes' operator revokes the approver's key: the same genuine evidence (its owner
    // endorsement still valid) now lacks a second approval, and the nodes refuse it.
    h.trust.revokeApprover(h.org.orgId, approverKey.key.publicKey.toUpperCase());
    await assert.rejects(signWith(genuine), (e: unknown) => {
      refused(e);
      assert.match((e as Error).message, /1 valid approval\(s\).*2 required/);
      return true;
    });
  });
});

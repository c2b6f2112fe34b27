// A cold-vault withdrawal end to end with the real commands: the offline cluster is made with
// `custos mpc cluster init` and `custos offline-signer keygen` (its nodes never on the platform's
// bus); the withdrawal is approved on line and waits in pending_signature; `custos cold export`
// writes its signing request; `custos offline-signer sign` has each offline node check the evidence
// itself and sign; `custos cold import` brings the signatures back, the platform checks them and
// broadcasts, and the chain completes it. Tampered requests get no signature, tampered signatures
// are refused, and a waiting withdrawal can be cancelled or expire with its funds released.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { signWithApproverKey } from '../src/identity/approver-keys.ts';
import { custodyApprovalAuthorizer, MemoryOwnerTrust } from '../src/mpc/authorizers/custody-approvals.ts';
import { approvalMessage, statementMessage } from '../src/mpc/authorizers/custody-evidence.ts';
import { runCliAsync, spawnCliUntil, waitExit } from './helpers/cli.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';
import { databaseBackends } from './helpers/databases.ts';
import { offlineKeyOf } from './helpers/offline-keys.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON documents in tests
type Json = any;

for (const backend of databaseBackends())
  describe(`cold vault withdrawals: approved on line, signed offline, imported, completed (${backend.name})`, {
    skip: backend.skip,
  }, () => {
    let h: CustodyHarness;
    let dir: string;
    let offlineDir: string;
    let api: string;
    let vaultId: string;
    let walletId: string;
    let walletEdId: string;
    /** Two approvers: a cold vault needs two approvals by default. */
    let approvers: { user: { id: string; token: string }; key: Json }[];
    const cli = async (args: string[], env: Record<string, string> = {}) => {
      const r = await runCliAsync(args, env);
      return {
        ...r,
        json: (() => {
          try {
            return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
          } catch {
            return undefined;
          }
        })(),
      };
    };
    /** `custos cold export|import` against the harness's API, as the operator. */
    const coldCli = (args: string[]) =>
      cli(['cold', ...args, '--api', api, '--token', h.org.users.operator.token, '--json']);
    /** `custos offline-signer sign` on the offline cluster. */
    const offlineSign = (request: string, out: string, env: Record<string, string> = {}) =>
      cli(['offline-signer', 'sign', '--dir', offlineDir, '--request', request, '--out', out, '--json'], env);
    const ticks = async (n: number) => {
      for (let i = 0; i < n; i++) await h.custody.tick();
    };

    before(async () => {
      h = await startCustodyHarness({ db: await backend.open() });
      dir = mkdtempSync(join(tmpdir(), 'custos-cold-'));
      offlineDir = join(dir, 'offline');
      api = await h.app.listen({ host: '127.0.0.1', port: 0 });
      const { org, call, chain } = h;
      // The offline ceremony, on the air-gapped host: a cluster of its own, a cold key by DKG.
      const init = await cli([
        'mpc',
        'cluster',
        'init',
        '--nodes',
        '3',
        '--threshold',
        '2',
        '--dir',
        offlineDir,
        '--namespace',
        `cold${randomBytes(5).toString('hex')}`,
        '--json',
      ]);
      assert.equal(init.code, 0, init.stderr + init.stdout);
      const keygen = (scheme: string) =>
        cli(['offline-signer', 'keygen', '--dir', offlineDir, '--scheme', scheme, '--json']);
      const kg = await keygen('ecdsa-secp256k1');
      assert.equal(kg.code, 0, kg.stderr + kg.stdout);
      assert.deepEqual(kg.json.parties, [1, 2, 3]);
      // One key per scheme: an Ed25519 (FROST) key for the Ed25519 test chain.
      const kgEd = await keygen('eddsa-ed25519');
      assert.equal(kgEd.code, 0, kgEd.stderr + kgEd.stdout);
      // The offline operators trust the organisation's owner public key (only the public half goes
      // to the air-gapped host).
      const trust = await cli([
        'approve',
        '--trust-owner',
        '--org',
        org.orgId,
        '--public-key',
        h.ownerKey.publicKey,
        '--trust-file',
        join(offlineDir, 'trusted-owners.json'),
        '--json',
      ]);
      assert.equal(trust.code, 0, trust.stderr + trust.stdout);

      // On line: the vault from the public half only, its policy signed, a wallet, an address, funds.
      const so = org.users.security_officer;
      const v = await call('POST', '/v1/vaults', so.token, {
        name: 'cold',
        tier: 'cold',
        offlineKeys: [kg.json, kgEd.json].map(offlineKeyOf),
      });
      assert.equal(v.status, 201, JSON.stringify(v.body));
      vaultId = v.body.id;
      await h.signPolicy(vaultId);
      const w = await call('POST', '/v1/wallets', org.users.operator.token, { vaultId, network: 'test' });
      assert.equal(w.status, 201, JSON.stringify(w.body));
      walletId = w.body.id;
      const a = await call('POST', `/v1/wallets/${walletId}/addresses`, org.users.operator.token, {});
      chain.faucet(a.body.address, 'TST', 10_000_000n);
      chain.mine(2);
      const wEd = await call('POST', '/v1/wallets', org.users.operator.token, {
        vaultId,
        network: 'test-ed25519',
      });
      assert.equal(wEd.status, 201, JSON.stringify(wEd.body));
      walletEdId = wEd.body.id;
      const aEd = await call('POST', `/v1/wallets/${walletEdId}/addresses`, org.users.operator.token, {});
      h.chainEd.faucet(aEd.body.address, 'TST', 10_000_000n);
      h.chainEd.mine(2);
      await ticks(2);
      approvers = [];
      for (const user of [org.users.approver, org.users.owner]) {
        const ak = await h.registerApproverKey(user);
        await h.endorse(ak.id);
        approvers.push({ user, key: ak.key });
      }
    });
    after(async () => {
      await h?.close();
      await h?.db.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** A withdrawal approved by the approver: it ends in pending_signature. */
    const approvedWithdrawal = async (key: string, amount: string, extra: object = {}, ed = false) => {
      const { call, org } = h;
      const t = await call(
        'POST',
        '/v1/transactions',
        org.users.operator.token,
        {
          walletId: ed ? walletEdId : walletId,
          asset: 'TST',
          destination: externalAddress(ed ? h.chainEd : h.chain),
          amount,
          ...extra,
        },
        { 'idempotency-key': key },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      assert.equal(t.body.state, 'pending_approval');
      assert.equal(t.body.requiredApprovals, 2);
      for (const a of approvers) {
        const r = await call('POST', `/v1/transactions/${t.body.id}/approvals`, a.user.token, {
          intentHash: t.body.intentHash,
          publicKey: a.key.publicKey,
          signature: signWithApproverKey(a.key, approvalMessage('approve', t.body.intentHash)),
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      await h.custody.withdrawals.idle();
      const got = await call('GET', `/v1/transactions/${t.body.id}`, org.users.operator.token);
      assert.equal(got.body.state, 'pending_signature', JSON.stringify(got.body));
      return got.body;
    };
    const balance = async () =>
      (await h.call('GET', `/v1/wallets/${walletId}/balances`, h.org.users.operator.token)).body.balances[0];

    test('export → offline sign → import → broadcast → completed; every step audited with its actor', async () => {
      const { call, org, chain } = h;
      const operator = org.users.operator;
      const tx = await approvedWithdrawal('cold-w-1', '2500000');
      assert.equal((await balance()).reserved, String(2_500_000 + 1000));

      // Only a pending_signature withdrawal has a signing request; the online nodes never saw it.
      const reqFile = join(dir, 'request.json');
      const exp = await coldCli(['export', tx.id, '--out', reqFile]);
      assert.equal(exp.code, 0, exp.stderr + exp.stdout);
      assert.equal(exp.json.amount, '2500000');
      const request = JSON.parse(readFileSync(reqFile, 'utf8'));
      assert.equal(request.kind, 'custos-offline-signing-request/v1');
      assert.equal(request.transactionId, tx.id);
      assert.equal(request.evidence.intentHash, tx.intentHash);
      assert.equal(request.evidence.approvals.length, 2);

      // Tampered requests: every offline node checks the evidence itself and none signs.
      const tampered: [string, (r: Json) => void, RegExp][] = [
        [
          'destination changed',
          (r) => {
            r.evidence.intent.destination = externalAddress(chain);
          },
          /intentHash does not match/,
        ],
        [
          'approval dropped',
          (r) => {
            r.evidence.approvals.pop();
          },
          /1 valid approval\(s\).*2 required/,
        ],
        [
          'approval signature forged',
          (r) => {
            r.evidence.approvals[0].signature = 'ab'.repeat(64);
          },
          /1 valid approval/,
        ],
        [
          'digest swapped',
          (r) => {
            r.digests = ['11'.repeat(32)];
          },
          /not the transaction digest/,
        ],
        [
          'policy re-signed by an untrusted owner',
          (r) => {
            r.evidence.policy.ownerPublicKey = 'cd'.repeat(32);
          },
          /not signed by an owner this node trusts/,
        ],
      ];
      for (const [what, change, reason] of tampered) {
        const bad = structuredClone(request);
        change(bad);
        const f = join(dir, 'bad-request.json');
        writeFileSync(f, JSON.stringify(bad));
        const out = join(dir, 'bad-signatures.json');
        const r = await offlineSign(f, out);
        assert.notEqual(r.code, 0, `${what}: signed anyway`);
        assert.match(JSON.stringify(r.json?.error), reason, `${what}: ${r.stdout}${r.stderr}`);
        assert.equal(existsSync(out), false, `${what}: a signatures file was written`);
      }

      // The real request is signed offline.
      const sigFile = join(dir, 'signatures.json');
      const s = await offlineSign(reqFile, sigFile);
      assert.equal(s.code, 0, s.stderr + s.stdout);
      assert.equal(s.json.signatures, 1);
      assert.equal(s.json.signers.length, 2);
      const signatures = JSON.parse(readFileSync(sigFile, 'utf8'));

      // Tampered signatures are refused on import, and nothing changes.
      const badSig = structuredClone(signatures);
      const b = Buffer.from(badSig.signatures[0].signature, 'hex');
      b[40]! ^= 1;
      badSig.signatures[0].signature = b.toString('hex');
      const wrongRecovery = structuredClone(signatures);
      wrongRecovery.signatures[0].recovery = 1 - wrongRecovery.signatures[0].recovery;
      const otherTx = { ...structuredClone(signatures), transactionId: 'tx_other' };
      for (const [what, body] of [
        ['bit flipped', badSig],
        ['wrong recovery id', wrongRecovery],
        ['other transaction', otherTx],
      ] as const) {
        const r = await call('POST', `/v1/transactions/${tx.id}/signatures`, operator.token, body);
        assert.equal(r.status, 422, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'CUSTOS_OFFLINE_SIGNATURE_INVALID', what);
      }
      assert.equal(
        (await call('GET', `/v1/transactions/${tx.id}`, operator.token)).body.state,
        'pending_signature',
      );

      // The real signatures: checked, broadcast, confirmed.
      const imp = await coldCli(['import', '--file', sigFile]);
      assert.equal(imp.code, 0, imp.stderr + imp.stdout);
      assert.equal(imp.json.state, 'broadcast');
      const again = await call('POST', `/v1/transactions/${tx.id}/signatures`, operator.token, signatures);
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'CUSTOS_ILLEGAL_TRANSITION');
      chain.mine(2);
      await ticks(2);
      const done = await call('GET', `/v1/transactions/${tx.id}`, operator.token);
      assert.equal(done.body.state, 'completed', JSON.stringify(done.body));
      assert.equal(await chain.getBalance(tx.destination, chain.asset('TST')), 2_500_000n);
      const rec = await call('GET', '/v1/reconciliation', org.users.auditor.token);
      assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
      assert.deepEqual(rec.body.differences, []);

      const verified = await verifyAuditChain(h.db.db);
      assert.equal(verified.ok, true, verified.reason ?? '');
      const steps = await h.db.db
        .selectFrom('audit_log')
        .select(['action', 'actor_type', 'actor_id'])
        .where('target_id', '=', tx.id)
        .orderBy('seq')
        .execute();
      const trail = steps.map((x) => `${x.action}:${x.actor_type}:${x.actor_id}`);
      for (const step of [
        `transaction.pending_signature:service:custody-worker`,
        `transaction.signing_request.export:user:${operator.id}`,
        `transaction.signing:user:${operator.id}`,
        'transaction.broadcast:service:custody-worker',
        'transaction.completed:service:chain-watcher',
      ])
        assert.ok(trail.includes(step), `${step} not in ${trail.join(', ')}`);
      assert.ok(
        trail.indexOf(`transaction.signing_request.export:user:${operator.id}`) <
          trail.indexOf(`transaction.signing:user:${operator.id}`),
      );
    });

    test('a waiting withdrawal can be cancelled or expire: funds released, no request afterwards', async () => {
      const { call, org } = h;
      const before = await balance();
      const c = await approvedWithdrawal('cold-w-cancel', '1000');
      const r = await call('POST', `/v1/transactions/${c.id}/cancel`, org.users.operator.token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.state, 'cancelled');
      const sr = await call('GET', `/v1/transactions/${c.id}/signing-request`, org.users.operator.token);
      assert.equal(sr.status, 409);
      assert.equal(sr.body.error.code, 'CUSTOS_ILLEGAL_TRANSITION');

      const e = await approvedWithdrawal('cold-w-expire', '1000', { expiresInSeconds: 60 });
      const x = await call('GET', `/v1/transactions/${e.id}/signing-request`, org.users.operator.token);
      assert.equal(x.status, 200);
      assert.equal(await h.custody.withdrawals.expireDue(new Date(Date.now() + 61_000)), 1);
      assert.equal(
        (await call('GET', `/v1/transactions/${e.id}`, org.users.operator.token)).body.state,
        'expired',
      );
      const entry = await h.db.db
        .selectFrom('audit_log')
        .select('details')
        .where('action', '=', 'transaction.expired')
        .where('target_id', '=', e.id)
        .executeTakeFirstOrThrow();
      assert.equal((entry.details as { signingRequestExported?: boolean }).signingRequestExported, true);
      assert.deepEqual(await balance(), before);
    });

    test('an Ed25519 (FROST) cold key: signed offline, imported, completed', async () => {
      const { call, org, chainEd } = h;
      const tx = await approvedWithdrawal('cold-w-ed', '400000', {}, true);
      const reqFile = join(dir, 'request-ed.json');
      const exp = await coldCli(['export', tx.id, '--out', reqFile]);
      assert.equal(exp.code, 0, exp.stderr + exp.stdout);
      assert.equal(JSON.parse(readFileSync(reqFile, 'utf8')).scheme, 'eddsa-ed25519');
      const sigFile = join(dir, 'signatures-ed.json');
      const s = await offlineSign(reqFile, sigFile);
      assert.equal(s.code, 0, s.stderr + s.stdout);
      const signatures = JSON.parse(readFileSync(sigFile, 'utf8'));
      assert.equal(signatures.signatures[0].recovery, undefined);
      const bad = structuredClone(signatures);
      bad.signatures[0].signature = `${bad.signatures[0].signature.slice(0, 64)}${'00'.repeat(32)}`;
      const r = await call('POST', `/v1/transactions/${tx.id}/signatures`, org.users.operator.token, bad);
      assert.equal(r.status, 422, JSON.stringify(r.body));
      const imp = await coldCli(['import', '--file', sigFile]);
      assert.equal(imp.code, 0, imp.stderr + imp.stdout);
      chainEd.mine(2);
      await ticks(2);
      const done = await call('GET', `/v1/transactions/${tx.id}`, org.users.operator.token);
      assert.equal(done.body.state, 'completed', JSON.stringify(done.body));
      assert.equal(await chainEd.getBalance(tx.destination, chainEd.asset('TST')), 400_000n);
    });

    const natsUrl = process.env['CUSTOS_TEST_NATS_URL'];
    test('offline nodes as separate `custos mpc-node start --offline` processes on the offline LAN’s NATS', {
      skip: natsUrl ? undefined : 'CUSTOS_TEST_NATS_URL not set',
    }, async () => {
      const { call, org, chain } = h;
      const operator = org.users.operator;
      const tx = await approvedWithdrawal('cold-w-nats', '700000');
      const reqFile = join(dir, 'request-nats.json');
      const exp = await coldCli(['export', tx.id, '--out', reqFile]);
      assert.equal(exp.code, 0, exp.stderr + exp.stdout);
      const procs: ChildProcess[] = [];
      try {
        for (const id of [1, 2, 3]) {
          // Each offline machine's operator keeps its own trusted-owners file.
          const nodeDir = join(offlineDir, `node-${id}`);
          copyFileSync(join(offlineDir, 'trusted-owners.json'), join(nodeDir, 'trusted-owners.json'));
          const { proc, output } = await spawnCliUntil(
            [
              'mpc-node',
              'start',
              '--id',
              String(id),
              '--cluster',
              join(offlineDir, 'cluster.json'),
              '--offline',
            ],
            { CUSTOS_NATS_URL: natsUrl!, CUSTOS_LOG_LEVEL: 'warn' },
            '"event":"ready"',
          );
          procs.push(proc);
          const out = output();
          assert.match(out, /"offline":true/);
        }
        const sigFile = join(dir, 'signatures-nats.json');
        const s = await offlineSign(reqFile, sigFile, { CUSTOS_NATS_URL: natsUrl! });
        assert.equal(s.code, 0, s.stderr + s.stdout);
        const imp = await coldCli(['import', '--file', sigFile]);
        assert.equal(imp.code, 0, imp.stderr + imp.stdout);
        assert.equal(imp.json.state, 'broadcast');
      } finally {
        for (const p of procs) {
          p.kill('SIGTERM');
          await waitExit(p, 15_000).catch(() => p.kill('SIGKILL'));
        }
      }
      chain.mine(2);
      await ticks(2);
      assert.equal((await call('GET', `/v1/transactions/${tx.id}`, operator.token)).body.state, 'completed');
    });

    test('node-side: the online authoriser never signs for a cold vault; the offline one only for cold vaults', async () => {
      const { call, org, chain } = h;
      const t = await approvedWithdrawal('cold-w-authz', '1000');
      const req = (await call('GET', `/v1/transactions/${t.id}/signing-request`, org.users.operator.token))
        .body;
      const trust = new MemoryOwnerTrust();
      trust.trust(org.orgId, h.ownerKey.publicKey);
      const decide = (offline: boolean, evidence: Json): Json =>
        custodyApprovalAuthorizer({ trust, chains: (n) => (n === 'test' ? chain : undefined), offline })({
          type: 'sign',
          keyId: req.keyId,
          message: Buffer.from(req.digests[0], 'hex'),
          derivationPath: req.derivationPath,
          authorization: evidence,
        } as Json);
      assert.equal(decide(true, req.evidence).decision, 'allow');
      const online = decide(false, req.evidence);
      assert.equal(online.decision, 'deny');
      assert.match(String((online as Json).reason), /cold vault keys sign offline only/);
      // The same vault's policy owner-signed as warm: the offline cluster refuses it.
      const statement = { ...req.evidence.policy.statement, tier: 'warm' };
      const warm = {
        ...req.evidence,
        policy: {
          statement,
          ownerPublicKey: h.ownerKey.publicKey,
          signature: signWithApproverKey(h.ownerKey, statementMessage(statement)),
        },
      };
      const off = decide(true, warm);
      assert.equal(off.decision, 'deny');
      assert.match(String((off as Json).reason), /signs for cold vaults only/);
      await call('POST', `/v1/transactions/${t.id}/cancel`, org.users.operator.token);
    });
  });

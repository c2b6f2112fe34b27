// Cold vaults: keys made by DKG on an offline cluster (here a second in-process cluster with its own
// bus hub, unreachable from the platform's), and only their public halves given to the platform.
// The online coordinator and nodes never learn the key; addresses derive from the public key; the
// offline shares are what control them; deposits are credited; withdrawals need approvals;
// key ceremonies on line are refused; and malformed or online keys are not accepted as cold.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { verifyAuditChain } from '../src/audit/verify.ts';
import { type InProcessCluster, startInProcessCluster } from '../src/mpc/local.ts';
import type { KeyRecord } from '../src/mpc/registry.ts';
import { getScheme } from '../src/mpc/schemes.ts';
import { openDatabase } from '../src/store/database.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';
import { offlineKeyOf } from './helpers/offline-keys.ts';

const hexToBytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

describe('cold vaults: keys made offline, public keys only on line (PGlite)', () => {
  let h: CustodyHarness;
  let offline: InProcessCluster;
  let offlineDir: string;
  let coldKey: KeyRecord;

  before(async () => {
    h = await startCustodyHarness({ db: await openDatabase({}) });
    offlineDir = mkdtempSync(join(tmpdir(), 'custos-offline-'));
    // The offline ceremony: its own cluster, secrets and bus (nothing shared with the platform's).
    offline = await startInProcessCluster({
      dir: offlineDir,
      kdf: { memoryCost: 1024, timeCost: 1 },
      poolSize: 1,
    });
    coldKey = await offline.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
  });
  after(async () => {
    await offline?.stop();
    await h?.close();
    await h?.db.close();
    rmSync(offlineDir, { recursive: true, force: true });
  });

  test('a cold vault from an offline key: addresses the offline shares control, deposits credited, nothing signed on line', async () => {
    const { org, call, chain } = h;
    const so = org.users.security_officer;
    const operator = org.users.operator;
    const v = await call('POST', '/v1/vaults', so.token, {
      name: 'cold-storage',
      tier: 'cold',
      offlineKeys: [offlineKeyOf(coldKey)],
    });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    assert.equal(v.body.tier, 'cold');
    assert.equal(v.body.threshold, 2);
    assert.equal(v.body.parties, 3);
    assert.equal(v.body.keys.length, 1);
    assert.equal(v.body.keys[0].keyId, coldKey.keyId);
    assert.equal(v.body.keys[0].publicKey, coldKey.publicKey);
    assert.equal(v.body.keys[0].xpub, coldKey.xpub, 'xpub computed from the public key and chain code');
    // The online side never learns the key: not in the coordinator's registry, no node holds a share.
    assert.equal(h.cluster.coordinator.registry.get(coldKey.keyId), undefined);
    await h.custody.service.start(); // a restart re-registers vault keys: not cold ones
    assert.equal(h.cluster.coordinator.registry.get(coldKey.keyId), undefined);
    await h.signPolicy(v.body.id);

    const w = await call('POST', '/v1/wallets', operator.token, { vaultId: v.body.id, network: 'test' });
    assert.equal(w.status, 201, JSON.stringify(w.body));
    const a = await call('POST', `/v1/wallets/${w.body.id}/addresses`, operator.token, {});
    assert.equal(a.status, 201, JSON.stringify(a.body));

    // The offline shares control the address: a 2-of-3 signature made offline under its path
    // verifies with the public key the address is derived from.
    const scheme = await getScheme('ecdsa-secp256k1');
    const child = scheme.derivePublicKey(
      {
        scheme: 'ecdsa-secp256k1',
        threshold: 2,
        parties: coldKey.parties,
        publicKey: hexToBytes(coldKey.publicKey),
        chainCode: hexToBytes(coldKey.chainCode),
      },
      a.body.path,
    );
    assert.equal(chain.deriveAddress(child), a.body.address);
    const digest = new Uint8Array(createHash('sha256').update(randomBytes(16)).digest());
    const sig = await offline.coordinator.sign(coldKey.keyId, digest, { path: a.body.path });
    assert.equal(sig.signingPublicKey, Buffer.from(child).toString('hex'));
    assert.ok(secp256k1.verify(hexToBytes(sig.signature), digest, child, { prehash: false }));

    // Deposits are watched and credited like any other address.
    chain.faucet(a.body.address, 'TST', 3_000_000n);
    chain.mine(2);
    await h.custody.tick();
    await h.custody.tick();
    const b = await call('GET', `/v1/wallets/${w.body.id}/balances`, operator.token);
    assert.equal(b.body.balances[0].available, '3000000');

    // A withdrawal needs approvals and is never signed on line (test/custody-cold-withdrawal.test.ts
    // signs one offline); cancelled here, its funds are released.
    const t = await call(
      'POST',
      '/v1/transactions',
      operator.token,
      { walletId: w.body.id, asset: 'TST', destination: externalAddress(chain), amount: '1000' },
      { 'idempotency-key': 'cold-1' },
    );
    assert.equal(t.status, 201, JSON.stringify(t.body));
    assert.equal(t.body.state, 'pending_approval');
    assert.equal(t.body.requiredApprovals, 2, 'a cold vault needs two approvals by default');
    assert.equal((await call('POST', `/v1/transactions/${t.body.id}/cancel`, operator.token)).status, 200);
    const b2 = await call('GET', `/v1/wallets/${w.body.id}/balances`, operator.token);
    assert.equal(b2.body.balances[0].available, '3000000');
    assert.equal(b2.body.balances[0].reserved, '0');

    // Key ceremonies for it do not run on the online nodes.
    for (const [url, body] of [
      [`/v1/keys/${coldKey.keyId}/refresh`, {}],
      [`/v1/keys/${coldKey.keyId}/reshare`, { threshold: 2, committee: [1, 2, 3] }],
      ['/v1/keys', { vaultId: v.body.id, scheme: 'eddsa-ed25519' }],
    ] as const) {
      const r = await call('POST', url, so.token, body);
      assert.equal(r.status, 409, `${url}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'CUSTOS_VAULT_COLD_OFFLINE');
    }
    const audit = await verifyAuditChain(h.db.db, {
      checkpointPublicKey: h.security.services.audit.checkpointPublicKey,
    });
    assert.equal(audit.ok, true, audit.reason ?? '');
    const created = await h.db.db
      .selectFrom('audit_log')
      .select('details')
      .where('action', '=', 'vault.create')
      .where('target_id', '=', v.body.id)
      .executeTakeFirstOrThrow();
    assert.equal((created.details as { offlineKeys?: boolean }).offlineKeys, true);
  });

  test('refused: a cold vault without offline keys, offline keys for a warm vault, an online key, a bad point', async () => {
    const { org, call } = h;
    const so = org.users.security_officer;
    const refuse = async (body: object, status: number, code: string, match?: RegExp) => {
      const r = await call('POST', '/v1/vaults', so.token, {
        name: `v-${randomBytes(3).toString('hex')}`,
        ...body,
      });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      if (match) assert.match(r.body.error.message, match);
    };
    await refuse({ tier: 'cold' }, 400, 'CUSTOS_VALIDATION', /offlineKeys/);
    await refuse(
      { tier: 'warm', offlineKeys: [offlineKeyOf(coldKey)] },
      400,
      'CUSTOS_VALIDATION',
      /cold vaults only/,
    );
    // A key whose shares are on the online nodes is not cold.
    const online = await h.cluster.coordinator.createKey('ecdsa-secp256k1', 2, 3);
    await refuse({ tier: 'cold', offlineKeys: [offlineKeyOf(online)] }, 409, 'CUSTOS_VAULT_COLD_OFFLINE');
    // Not a point on secp256k1 (x = 5 has no y on the curve), a wrong-length key, duplicate parties.
    const notOnCurve = `02${'00'.repeat(31)}05`;
    await refuse(
      {
        tier: 'cold',
        offlineKeys: [{ ...offlineKeyOf(coldKey), keyId: 'key_badpoint1', publicKey: notOnCurve }],
      },
      400,
      'CUSTOS_VALIDATION',
      /not a valid/,
    );
    await refuse(
      {
        tier: 'cold',
        offlineKeys: [{ ...offlineKeyOf(coldKey), keyId: 'key_badparties', parties: [1, 1, 2] }],
      },
      400,
      'CUSTOS_VALIDATION',
      /distinct/,
    );
    await refuse(
      { tier: 'cold', offlineKeys: [{ ...offlineKeyOf(coldKey), publicKey: 'abcd' }] },
      400,
      'CUSTOS_VALIDATION',
    );
    // The same offline key cannot back two vaults.
    const again = await call('POST', '/v1/vaults', so.token, {
      name: 'cold-again',
      tier: 'cold',
      offlineKeys: [offlineKeyOf(coldKey)],
    });
    assert.equal(again.status, 409, JSON.stringify(again.body));
  });
});

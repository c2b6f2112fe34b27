// Acceptance 1 of the identity issue for the custody routes: every custody route × every role (and
// no credentials, and an API key with every grantable scope) against docs/security/rbac.md, and every
// custody route called by another organisation with this organisation's ids returns none of its data.
// The identity routes have the same two checks in identity-rbac.test.ts; coverage here is of every
// route the custody app registers, so a new custody route without a case fails.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { signWithApproverKey } from '../src/identity/approver-keys.ts';
import { statementMessage } from '../src/mpc/authorizers/custody-evidence.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';
import { databaseBackends } from './helpers/databases.ts';
import { fullApiKey, makeOrg, type TestOrg } from './helpers/identity-harness.ts';
import {
  coverageFailures,
  credentialOf,
  crossTenantFailures,
  matrixFailures,
  type RouteCase,
} from './helpers/rbac-matrix.ts';

interface Fixtures {
  org: TestOrg;
  apiKey: string;
  vaultId: string;
  keyId: string;
  publicKey: string;
  walletId: string;
  address: string;
  destination: string;
  txId: string;
  intentHash: string;
  /** The approver's registered, not yet endorsed key. */
  approverKeyId: string;
  policySignature: { publicKey: string; signature: string };
  endorsementSignature: { publicKey: string; signature: string };
}

// A vote whose signature is well-formed but wrong: past the permission check it is a domain refusal.
const badVote = (f: Fixtures) => ({
  intentHash: f.intentHash,
  publicKey: f.policySignature.publicKey,
  signature: randomBytes(64).toString('hex'),
});

/** One request per custody route (identity routes: identity-rbac.test.ts). */
const CUSTODY_CASES: Record<string, RouteCase<Fixtures>> = {
  'GET /v1/assets': { permission: 'wallets:read', url: () => '/v1/assets' },
  'POST /v1/assets': {
    permission: 'vaults:write',
    url: () => '/v1/assets',
    body: () => ({
      network: 'test',
      symbol: `R${randomBytes(3).toString('hex')}`,
      decimals: 6,
      contract: null,
    }),
  },
  // A configured asset: past the permission check the answer is a domain refusal (409).
  'GET /v1/assets/:assetId/endorsement-statement': {
    permission: 'wallets:read',
    url: () => '/v1/assets/test:TST/endorsement-statement',
  },
  'POST /v1/assets/:assetId/endorsement': {
    permission: 'vaults:write',
    url: () => '/v1/assets/test:TST/endorsement',
    body: (f) => f.policySignature,
  },
  'GET /v1/vaults': { permission: 'vaults:read', url: () => '/v1/vaults' },
  'POST /v1/vaults': {
    permission: 'keys:ceremony',
    url: () => '/v1/vaults',
    body: () => ({ name: `rbac-${randomUUID().slice(0, 6)}`, tier: 'hot', threshold: 2, parties: 3 }),
  },
  'GET /v1/vaults/:vaultId': { permission: 'vaults:read', url: (f) => `/v1/vaults/${f.vaultId}` },
  'POST /v1/vaults/:vaultId/policy-signature': {
    permission: 'vaults:write',
    url: (f) => `/v1/vaults/${f.vaultId}/policy-signature`,
    body: (f) => f.policySignature,
  },
  'GET /v1/approver-keys/:keyId/endorsement-statement': {
    permission: 'approver_keys:read',
    url: (f) => `/v1/approver-keys/${f.approverKeyId}/endorsement-statement`,
  },
  'POST /v1/approver-keys/:keyId/endorsement': {
    permission: 'approver_keys:register',
    url: (f) => `/v1/approver-keys/${f.approverKeyId}/endorsement`,
    body: (f) => f.endorsementSignature,
  },
  'GET /v1/keys': { permission: 'keys:read', url: () => '/v1/keys' },
  'POST /v1/keys': {
    permission: 'keys:ceremony',
    url: () => '/v1/keys',
    body: (f) => ({ vaultId: f.vaultId, scheme: 'schnorr-bip340' }),
  },
  'POST /v1/keys/:keyId/refresh': { permission: 'keys:ceremony', url: (f) => `/v1/keys/${f.keyId}/refresh` },
  'POST /v1/keys/:keyId/reshare': {
    permission: 'keys:ceremony',
    url: (f) => `/v1/keys/${f.keyId}/reshare`,
    body: () => ({ threshold: 2, committee: [1, 2, 3] }),
  },
  'GET /v1/wallets': { permission: 'wallets:read', url: () => '/v1/wallets' },
  'POST /v1/wallets': {
    permission: 'wallets:write',
    url: () => '/v1/wallets',
    body: (f) => ({ vaultId: f.vaultId, network: 'test-ed25519' }),
  },
  'GET /v1/wallets/:walletId': { permission: 'wallets:read', url: (f) => `/v1/wallets/${f.walletId}` },
  'GET /v1/wallets/:walletId/balances': {
    permission: 'wallets:read',
    url: (f) => `/v1/wallets/${f.walletId}/balances`,
  },
  'GET /v1/wallets/:walletId/addresses': {
    permission: 'wallets:read',
    url: (f) => `/v1/wallets/${f.walletId}/addresses`,
  },
  'POST /v1/wallets/:walletId/addresses': {
    permission: 'wallets:write',
    url: (f) => `/v1/wallets/${f.walletId}/addresses`,
    body: () => ({ label: 'rbac' }),
  },
  'GET /v1/deposits': { permission: 'wallets:read', url: () => '/v1/deposits' },
  'GET /v1/events': { permission: 'transactions:read', url: () => '/v1/events' },
  'GET /v1/transactions': { permission: 'transactions:read', url: () => '/v1/transactions' },
  'POST /v1/transactions': {
    permission: 'transactions:create',
    url: () => '/v1/transactions',
    headers: () => ({ 'idempotency-key': randomUUID() }),
    body: (f) => ({ walletId: f.walletId, asset: 'TST', destination: f.destination, amount: '1000' }),
  },
  'GET /v1/transactions/:txId': { permission: 'transactions:read', url: (f) => `/v1/transactions/${f.txId}` },
  'POST /v1/transactions/:txId/approvals': {
    permission: 'transactions:approve',
    url: (f) => `/v1/transactions/${f.txId}/approvals`,
    body: badVote,
  },
  'POST /v1/transactions/:txId/rejections': {
    permission: 'transactions:approve',
    url: (f) => `/v1/transactions/${f.txId}/rejections`,
    body: badVote,
  },
  // Not a cold vault's withdrawal: past the permission check both are domain refusals (409).
  'GET /v1/transactions/:txId/signing-request': {
    permission: 'transactions:sign_offline',
    url: (f) => `/v1/transactions/${f.txId}/signing-request`,
  },
  'POST /v1/transactions/:txId/signatures': {
    permission: 'transactions:sign_offline',
    url: (f) => `/v1/transactions/${f.txId}/signatures`,
    body: (f) => ({
      kind: 'custos-offline-signatures/v1',
      transactionId: f.txId,
      intentHash: f.intentHash,
      keyId: f.keyId,
      derivationPath: 'm/0',
      signatures: [
        { digest: randomBytes(32).toString('hex'), signature: randomBytes(64).toString('hex'), recovery: 0 },
      ],
    }),
  },
  'POST /v1/transactions/:txId/cancel': {
    permission: 'transactions:cancel',
    url: (f) => `/v1/transactions/${f.txId}/cancel`,
  },
  'POST /v1/dev/test-chain/faucet': {
    permission: 'wallets:write',
    url: () => '/v1/dev/test-chain/faucet',
    body: (f) => ({ address: f.address, amount: '1' }),
  },
  'GET /v1/reconciliation': { permission: 'reports:read', url: () => '/v1/reconciliation' },
};

async function fixtures(h: CustodyHarness, org: TestOrg): Promise<Fixtures> {
  const { call } = h;
  const owner = org.users.owner;
  const v = await call('POST', '/v1/vaults', owner.token, {
    name: 'rbac',
    tier: 'warm',
    threshold: 2,
    parties: 3,
  });
  assert.equal(v.status, 201, JSON.stringify(v.body));
  const key = v.body.keys.find((k: { scheme: string }) => k.scheme === 'ecdsa-secp256k1');
  const w = await call('POST', '/v1/wallets', owner.token, { vaultId: v.body.id, network: 'test' });
  assert.equal(w.status, 201, JSON.stringify(w.body));
  const a = await call('POST', `/v1/wallets/${w.body.id}/addresses`, owner.token, { label: 'main' });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  return {
    org,
    apiKey: await fullApiKey(h.security.services, org),
    vaultId: v.body.id,
    keyId: key.keyId,
    publicKey: key.publicKey,
    walletId: w.body.id,
    address: a.body.address,
    destination: externalAddress(h.chain),
    txId: '',
    intentHash: '',
    approverKeyId: '',
    policySignature: { publicKey: '', signature: '' },
    endorsementSignature: { publicKey: '', signature: '' },
  };
}

const credential = credentialOf;

for (const backend of databaseBackends()) {
  describe(`custody RBAC and tenancy [${backend.name}]`, { skip: backend.skip }, () => {
    let h: CustodyHarness;
    let a: Fixtures;
    let b: Fixtures;
    before(async () => {
      h = await startCustodyHarness({ db: await backend.open(), testChainFaucet: true });
      a = await fixtures(h, h.org);
      b = await fixtures(h, await makeOrg(h.security.services, 'bravo'));

      // A's wallet is funded and holds a warm-vault withdrawal waiting for approval.
      await h.signPolicy(a.vaultId);
      h.chain.faucet(a.address, 'TST', 10_000_000n);
      h.chain.mine(3);
      for (let i = 0; i < 3; i++) await h.custody.tick();
      const t = await h.call(
        'POST',
        '/v1/transactions',
        h.org.users.operator.token,
        { walletId: a.walletId, asset: 'TST', destination: a.destination, amount: '5000' },
        { 'idempotency-key': randomUUID() },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      assert.equal(t.body.state, 'pending_approval');
      a.txId = t.body.id;
      a.intentHash = t.body.intentHash;

      // Owner-signed statements, so the routes that take them get a valid body.
      const vault = await h.call('GET', `/v1/vaults/${a.vaultId}`, h.org.users.owner.token);
      a.policySignature = {
        publicKey: h.ownerKey.publicKey,
        signature: signWithApproverKey(h.ownerKey, statementMessage(vault.body.policy)),
      };
      const ak = await h.registerApproverKey(h.org.users.approver);
      a.approverKeyId = ak.id;
      const st = await h.call(
        'GET',
        `/v1/approver-keys/${ak.id}/endorsement-statement`,
        h.org.users.owner.token,
      );
      a.endorsementSignature = {
        publicKey: h.ownerKey.publicKey,
        signature: signWithApproverKey(h.ownerKey, statementMessage(st.body)),
      };
    });
    after(async () => {
      await h?.close();
      await h?.db.close();
    });

    const custodyRoutes = () => h.security.routes.filter((r) => r.source === 'extra');

    test('every custody route declares a permission from the matrix and has a test case', () => {
      assert.ok(custodyRoutes().length >= 25, `${custodyRoutes().length} custody routes recorded`);
      assert.deepEqual(coverageFailures(custodyRoutes(), CUSTODY_CASES), []);
    });

    test('every custody route × every role, API key and no credentials matches the documented matrix', async () => {
      const failures = await matrixFailures(h.app, custodyRoutes(), CUSTODY_CASES, a, (who) =>
        credential(a, who),
      );
      assert.deepEqual(failures, []);
    });

    test('cross-tenant: every custody route called by another organisation with our ids gets none of our data', async () => {
      const secrets = [a.org.orgId, a.vaultId, a.keyId, a.publicKey, a.walletId, a.txId, a.approverKeyId];
      const failures = await crossTenantFailures(
        h.app,
        custodyRoutes(),
        CUSTODY_CASES,
        a,
        {
          owner: credential(b, 'owner'),
          auditor: credential(b, 'auditor'),
          api_key: credential(b, 'api_key'),
        },
        secrets,
        // List routes are also asked for A's objects by filter.
        (method, url) =>
          method === 'GET' && !url.includes(':') && !url.includes('?')
            ? `${url}?vaultId=${a.vaultId}&walletId=${a.walletId}&network=test`
            : url,
      );
      assert.deepEqual(failures, []);
      // B's attempts changed nothing of A's: the withdrawal still waits (or was cancelled by A's own roles).
      const t = await h.call('GET', `/v1/transactions/${a.txId}`, a.org.users.owner.token);
      assert.equal(t.status, 200);
      assert.equal(t.body.approvals.length, 0);
    });

    test("an MPC node's refusal is a security event of the key's organisation", async () => {
      await assert.rejects(
        h.cluster.coordinator.sign(a.keyId, randomBytes(32), {
          authorization: { kind: 'custody-withdrawal', forged: true },
        }),
        /UNAUTHORIZED|refus|evidence/i,
      );
      const events = async (token: string) =>
        (await h.call('GET', '/v1/security-events', token)).body.events as {
          kind: string;
          severity: string;
          details: { keyId?: string; observer?: string };
        }[];
      let mine: Awaited<ReturnType<typeof events>> = [];
      for (let i = 0; i < 50 && mine.length === 0; i++) {
        mine = (await events(a.org.users.security_officer.token)).filter(
          (e) => e.kind === 'mpc_unauthorized' && e.details.keyId === a.keyId,
        );
        if (mine.length === 0) await sleep(20);
      }
      assert.ok(mine.length >= 1, 'the refusal is listed for the key owner');
      assert.equal(mine[0]!.severity, 'critical');
      assert.match(mine[0]!.details.observer ?? '', /^node-\d$/);
      const theirs = await events(b.org.users.owner.token);
      assert.ok(!JSON.stringify(theirs).includes(a.keyId), 'not listed for another organisation');
    });

    test("an organisation's registered assets are its own", async () => {
      const symbol = `P${randomBytes(3).toString('hex').toUpperCase()}`;
      const r = await h.call('POST', '/v1/assets', a.org.users.admin.token, {
        network: 'test',
        symbol,
        decimals: 6,
        contract: null,
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const mine = await h.call('GET', '/v1/assets?network=test', a.org.users.auditor.token);
      assert.ok(mine.body.assets.some((x: { symbol: string }) => x.symbol === symbol));
      assert.ok(
        mine.body.assets.some((x: { symbol: string }) => x.symbol === 'TST'),
        'configured assets too',
      );
      const theirs = await h.call('GET', '/v1/assets', b.org.users.owner.token);
      assert.ok(!JSON.stringify(theirs.body).includes(symbol), "B does not see A's asset");
      assert.ok(theirs.body.assets.some((x: { symbol: string }) => x.symbol === 'TST'));
      // Nor can B withdraw it (the asset is unknown to B, whatever its wallet holds).
      const w = await h.call(
        'POST',
        '/v1/transactions',
        b.org.users.owner.token,
        { walletId: b.walletId, asset: symbol, destination: b.destination, amount: '1' },
        { 'idempotency-key': randomUUID() },
      );
      assert.equal(w.status, 404, JSON.stringify(w.body));
    });

    test('sandbox and production are apart: a sandbox key or session sees none of the production data', async () => {
      const sandboxKey = await fullApiKey(h.security.services, a.org, 'sandbox');
      assert.match(sandboxKey, /^ck_test_/);
      const { token: sandboxOwner } = await h.security.services.tokens.issue({
        sub: a.org.users.owner.id,
        org: a.org.orgId,
        role: 'owner',
        env: 'sandbox',
        sid: randomUUID(),
        mfa: true,
      });
      const production = [a.vaultId, a.keyId, a.walletId, a.address, a.txId];
      for (const token of [sandboxKey, sandboxOwner]) {
        for (const url of [
          '/v1/vaults',
          '/v1/keys',
          '/v1/wallets',
          '/v1/deposits',
          '/v1/transactions',
          `/v1/wallets?vaultId=${a.vaultId}`,
          `/v1/deposits?walletId=${a.walletId}`,
          `/v1/transactions?walletId=${a.walletId}`,
          '/v1/events',
          `/v1/events?resourceId=${a.txId}`,
          '/v1/reconciliation',
        ]) {
          const r = await h.call('GET', url, token);
          if (token === sandboxKey && url === '/v1/keys') {
            assert.equal(r.status, 403, 'keys:read is for humans only');
            continue;
          }
          assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.body)}`);
          for (const x of production) assert.ok(!JSON.stringify(r.body).includes(x), `${url} shows ${x}`);
        }
        for (const url of [
          `/v1/vaults/${a.vaultId}`,
          `/v1/wallets/${a.walletId}`,
          `/v1/wallets/${a.walletId}/balances`,
          `/v1/wallets/${a.walletId}/addresses`,
          `/v1/transactions/${a.txId}`,
        ]) {
          assert.equal((await h.call('GET', url, token)).status, 404, url);
        }
        const w = await h.call(
          'POST',
          '/v1/transactions',
          token,
          { walletId: a.walletId, asset: 'TST', destination: a.destination, amount: '1' },
          { 'idempotency-key': randomUUID() },
        );
        assert.equal(w.status, 404, 'no withdrawal from a production wallet with sandbox credentials');
        assert.equal((await h.call('POST', `/v1/transactions/${a.txId}/cancel`, token)).status, 404);
        assert.equal((await h.call('POST', `/v1/wallets/${a.walletId}/addresses`, token, {})).status, 404);
      }
      // The sandbox has its own vaults, which production does not see.
      const sv = await h.call('POST', '/v1/vaults', sandboxOwner, {
        name: 'sandbox',
        tier: 'hot',
        threshold: 2,
        parties: 3,
      });
      assert.equal(sv.status, 201, JSON.stringify(sv.body));
      const sw = await h.call('POST', '/v1/wallets', sandboxKey, { vaultId: sv.body.id, network: 'test' });
      assert.equal(sw.status, 201, JSON.stringify(sw.body));
      const prodVaults = await h.call('GET', '/v1/vaults', a.org.users.owner.token);
      assert.ok(prodVaults.body.vaults.some((v: { id: string }) => v.id === a.vaultId));
      assert.ok(!prodVaults.body.vaults.some((v: { id: string }) => v.id === sv.body.id));
      assert.equal((await h.call('GET', `/v1/wallets/${sw.body.id}`, a.apiKey)).status, 404);
      assert.equal((await h.call('GET', `/v1/wallets/${sw.body.id}`, sandboxKey)).status, 200);
    });
  });
}

// Acceptance 1 of the identity issue: every route × every role (and no credentials, and an API key
// with every grantable scope) against the matrix in docs/security/rbac.md; and every route called
// by another organisation with this organisation's ids returns none of its data.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateApproverKey, signApproverProof } from '../src/identity/approver-keys.ts';
import { parseRbacMatrix, rbac, roleHas } from '../src/identity/rbac.ts';
import type { DatabaseHandle } from '../src/store/database.ts';
import { databaseBackends } from './helpers/databases.ts';
import {
  makeOrg,
  type SecurityApp,
  startSecurityApp,
  type TestOrg,
  userPrincipal,
} from './helpers/identity-harness.ts';
import {
  callRoute,
  coverageFailures,
  credentialOf,
  crossTenantFailures,
  matrixFailures,
  type RouteCase,
} from './helpers/rbac-matrix.ts';

interface Fixtures {
  org: TestOrg;
  orgName: string;
  apiKeyId: string;
  approverKeyId: string;
  /** An API key of this org with every grantable scope. */
  apiKey: string;
}

/** One request per route; a route without a case fails the test (so new routes get one). */
const CASES: Record<string, RouteCase<Fixtures>> = {
  'POST /v1/auth/login': {
    permission: 'public',
    url: () => '/v1/auth/login',
    body: () => ({ email: 'nobody@x.test', password: 'x' }),
  },
  'POST /v1/auth/refresh': {
    permission: 'public',
    url: () => '/v1/auth/refresh',
    body: () => ({ refreshToken: 'crt_unknown' }),
  },
  'POST /v1/auth/logout': { permission: 'authenticated', url: () => '/v1/auth/logout' },
  'POST /v1/auth/totp/enroll': { permission: 'authenticated', url: () => '/v1/auth/totp/enroll' },
  'POST /v1/auth/totp/verify': {
    permission: 'authenticated',
    url: () => '/v1/auth/totp/verify',
    body: () => ({ code: '000000' }),
  },
  'GET /.well-known/jwks.json': { permission: 'public', url: () => '/.well-known/jwks.json' },
  'GET /v1/orgs': { permission: 'orgs:read', url: () => '/v1/orgs' },
  'GET /v1/orgs/:orgId': { permission: 'orgs:read', url: (f) => `/v1/orgs/${f.org.orgId}` },
  'PATCH /v1/orgs/:orgId': {
    permission: 'orgs:write',
    url: (f) => `/v1/orgs/${f.org.orgId}`,
    body: (f) => ({ name: f.orgName }),
  },
  'GET /v1/users': { permission: 'users:read', url: () => '/v1/users' },
  'POST /v1/users': {
    permission: 'users:write',
    url: () => '/v1/users',
    body: () => ({ email: `u-${randomUUID()}@rbac.test`, role: 'operator' }),
  },
  'GET /v1/users/:userId': { permission: 'users:read', url: (f) => `/v1/users/${f.org.users.operator.id}` },
  'PATCH /v1/users/:userId': {
    permission: 'users:write',
    url: (f) => `/v1/users/${f.org.users.operator.id}`,
    body: () => ({ unlock: true }),
  },
  'GET /v1/api-keys': { permission: 'api_keys:read', url: () => '/v1/api-keys' },
  'POST /v1/api-keys': {
    permission: 'api_keys:write',
    url: () => '/v1/api-keys',
    body: () => ({ name: 'rbac', environment: 'sandbox', scopes: ['orgs:read'] }),
  },
  'DELETE /v1/api-keys/:keyId': { permission: 'api_keys:write', url: (f) => `/v1/api-keys/${f.apiKeyId}` },
  'GET /v1/approver-keys': { permission: 'approver_keys:read', url: () => '/v1/approver-keys' },
  'POST /v1/approver-keys': {
    permission: 'approver_keys:register',
    url: () => '/v1/approver-keys',
    body: (f, userId) => {
      const k = generateApproverKey();
      return {
        publicKey: k.publicKey,
        label: 'rbac',
        proof: signApproverProof(k, f.org.orgId, userId ?? 'none'),
      };
    },
  },
  'DELETE /v1/approver-keys/:keyId': {
    permission: 'approver_keys:revoke',
    url: (f) => `/v1/approver-keys/${f.approverKeyId}`,
  },
  'GET /v1/audit': { permission: 'audit:read', url: () => '/v1/audit?limit=50' },
  'GET /v1/security-events': { permission: 'security_events:read', url: () => '/v1/security-events' },
};

async function fixtures(s: SecurityApp, name: string): Promise<Fixtures> {
  const org = await makeOrg(s.services, name);
  const owner = ownerPrincipal(org);
  const ctx = { requestId: null, ip: null };
  const key = await s.services.identity.createApiKey(owner, ctx, {
    name: 'fixture',
    environment: 'production',
    scopes: [...rbac().apiKeyGrantable],
  });
  // A second key, the target of the revoke route (revoking the caller's own key would end the test).
  const target = await s.services.identity.createApiKey(owner, ctx, {
    name: 'revoke-target',
    environment: 'sandbox',
    scopes: ['orgs:read'],
  });
  const ak = generateApproverKey();
  const approver = userPrincipal(org.orgId, org.users.approver.id, 'approver');
  const appr = await s.services.identity.registerApproverKey(approver, ctx, {
    publicKey: ak.publicKey,
    label: 'fixture',
    proof: signApproverProof(ak, org.orgId, org.users.approver.id),
  });
  const orgView = await s.services.identity.getOrg(owner, org.orgId);
  return { org, orgName: orgView.name, apiKeyId: target.apiKey.id, approverKeyId: appr.id, apiKey: key.key };
}

const ownerPrincipal = (org: TestOrg) => userPrincipal(org.orgId, org.users.owner.id, 'owner');

const credential = credentialOf;

const call = (s: SecurityApp, method: string, url: string, token: string | null) =>
  callRoute(s.app, method, url, token);

test('the matrix parses from docs/security/rbac.md and rejects malformed tables', () => {
  const m = rbac();
  assert.ok(m.permissions.length >= 20);
  assert.ok(roleHas('auditor', 'audit:read'));
  assert.ok(!roleHas('operator', 'audit:read'));
  assert.throws(() => parseRbacMatrix('no table'), /markers/);
  assert.throws(
    () =>
      parseRbacMatrix(
        '<!-- rbac-matrix:start -->\n| permission | owner |\n|---|---|\n| `a:b` | ✓ |\n<!-- rbac-matrix:end -->',
      ),
    /header/,
  );
});

for (const backend of databaseBackends()) {
  describe(`RBAC and tenancy [${backend.name}]`, { skip: backend.skip }, () => {
    let db: DatabaseHandle;
    let s: SecurityApp;
    let a: Fixtures;
    let b: Fixtures;
    before(async () => {
      db = await backend.open();
      await db.migrate();
      s = await startSecurityApp({ db });
      a = await fixtures(s, 'alpha');
      b = await fixtures(s, 'bravo');
    });
    after(async () => {
      await s?.close();
      await db?.close();
    });

    test('every /v1 route declares a permission from the matrix (or is public) and has a test case', () => {
      assert.deepEqual(coverageFailures(s.routes, CASES), []);
    });

    test('every route × every role, API key and no credentials matches the documented matrix', async () => {
      assert.deepEqual(await matrixFailures(s.app, s.routes, CASES, a, (who) => credential(a, who)), []);
    });

    test('a token whose role still needs TOTP enrolment may only enrol', async () => {
      const { token } = await s.services.tokens.issue({
        sub: a.org.users.admin.id,
        org: a.org.orgId,
        role: 'admin',
        env: 'production',
        sid: randomUUID(),
        mfa: false,
      });
      const users = await call(s, 'GET', '/v1/users', token);
      assert.equal(users.status, 403);
      assert.equal(users.code, 'CUSTOS_MFA_ENROLLMENT_REQUIRED');
      const enroll = await call(s, 'POST', '/v1/auth/totp/enroll', token);
      assert.equal(enroll.status, 200, enroll.body);
    });

    test('cross-tenant: every route called by another organisation with our ids gets none of our data', async () => {
      const secrets = [
        a.org.orgId,
        a.orgName,
        a.apiKeyId,
        a.approverKeyId,
        ...Object.values(a.org.users).flatMap((u) => [u.id, u.email]),
      ];
      // B's credentials, A's ids (in the path, the query and the body).
      const failures = await crossTenantFailures(
        s.app,
        s.routes,
        CASES,
        a,
        {
          owner: credential(b, 'owner'),
          auditor: credential(b, 'auditor'),
          api_key: credential(b, 'api_key'),
        },
        secrets,
        (method, url) =>
          (method === 'GET' && !url.includes('?')
            ? `${url}?userId=${a.org.users.approver.id}&actorId=${a.org.users.owner.id}`
            : url
          ).replace('limit=50', `limit=50&actorId=${a.org.users.owner.id}`),
      );
      assert.deepEqual(failures, []);
      // A's data is unchanged by B's attempts.
      const orgA = await call(s, 'GET', `/v1/orgs/${a.org.orgId}`, a.org.users.owner.token);
      assert.equal(JSON.parse(orgA.body).name, a.orgName);
      const keysA = await call(s, 'GET', '/v1/api-keys', a.org.users.owner.token);
      const fixtureKey = JSON.parse(keysA.body).apiKeys.find((k: { id: string }) => k.id === a.apiKeyId);
      assert.ok(fixtureKey);
    });
  });
}

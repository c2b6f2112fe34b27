// Acceptance 1 of the identity issue: every route × every role (and no credentials, and an API key
// with every grantable scope) against the matrix in docs/security/rbac.md; and every route called
// by another organisation with this organisation's ids returns none of its data.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateApproverKey, signApproverProof } from '../src/identity/approver-keys.ts';
import type { Principal } from '../src/identity/principal.ts';
import { parseRbacMatrix, permissionsOf, ROLES, type Role, rbac, roleHas } from '../src/identity/rbac.ts';
import type { DatabaseHandle } from '../src/store/database.ts';
import { databaseBackends } from './helpers/databases.ts';
import { makeOrg, type SecurityApp, startSecurityApp, type TestOrg } from './helpers/identity-harness.ts';

interface Fixtures {
  org: TestOrg;
  orgName: string;
  apiKeyId: string;
  approverKeyId: string;
  /** An API key of this org with every grantable scope. */
  apiKey: string;
}

type Who = Role | 'api_key' | 'none';
interface Case {
  url: (f: Fixtures) => string;
  body?: (f: Fixtures, actorUserId: string | null) => unknown;
}

/** One request per route; a route without a case fails the test (so new routes get one). */
const CASES: Record<string, Case> = {
  'POST /v1/auth/login': {
    url: () => '/v1/auth/login',
    body: () => ({ email: 'nobody@x.test', password: 'x' }),
  },
  'POST /v1/auth/refresh': { url: () => '/v1/auth/refresh', body: () => ({ refreshToken: 'crt_unknown' }) },
  'POST /v1/auth/logout': { url: () => '/v1/auth/logout' },
  'POST /v1/auth/totp/enroll': { url: () => '/v1/auth/totp/enroll' },
  'POST /v1/auth/totp/verify': { url: () => '/v1/auth/totp/verify', body: () => ({ code: '000000' }) },
  'GET /.well-known/jwks.json': { url: () => '/.well-known/jwks.json' },
  'GET /v1/orgs': { url: () => '/v1/orgs' },
  'GET /v1/orgs/:orgId': { url: (f) => `/v1/orgs/${f.org.orgId}` },
  'PATCH /v1/orgs/:orgId': { url: (f) => `/v1/orgs/${f.org.orgId}`, body: (f) => ({ name: f.orgName }) },
  'GET /v1/users': { url: () => '/v1/users' },
  'POST /v1/users': {
    url: () => '/v1/users',
    body: () => ({ email: `u-${randomUUID()}@rbac.test`, role: 'operator' }),
  },
  'GET /v1/users/:userId': { url: (f) => `/v1/users/${f.org.users.operator.id}` },
  'PATCH /v1/users/:userId': {
    url: (f) => `/v1/users/${f.org.users.operator.id}`,
    body: () => ({ unlock: true }),
  },
  'GET /v1/api-keys': { url: () => '/v1/api-keys' },
  'POST /v1/api-keys': {
    url: () => '/v1/api-keys',
    body: () => ({ name: 'rbac', environment: 'sandbox', scopes: ['orgs:read'] }),
  },
  'DELETE /v1/api-keys/:keyId': { url: (f) => `/v1/api-keys/${f.apiKeyId}` },
  'GET /v1/approver-keys': { url: () => '/v1/approver-keys' },
  'POST /v1/approver-keys': {
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
  'DELETE /v1/approver-keys/:keyId': { url: (f) => `/v1/approver-keys/${f.approverKeyId}` },
  'GET /v1/audit': { url: () => '/v1/audit?limit=50' },
  'GET /v1/security-events': { url: () => '/v1/security-events' },
};

const DENIAL_CODES = new Set([
  'CUSTOS_UNAUTHENTICATED',
  'CUSTOS_FORBIDDEN',
  'CUSTOS_MFA_ENROLLMENT_REQUIRED',
]);

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
  const approver: Principal = {
    ...owner,
    userId: org.users.approver.id,
    role: 'approver',
    permissions: permissionsOf('approver'),
    actor: { type: 'user', id: org.users.approver.id },
  };
  const appr = await s.services.identity.registerApproverKey(approver, ctx, {
    publicKey: ak.publicKey,
    label: 'fixture',
    proof: signApproverProof(ak, org.orgId, org.users.approver.id),
  });
  const orgView = await s.services.identity.getOrg(owner, org.orgId);
  return { org, orgName: orgView.name, apiKeyId: target.apiKey.id, approverKeyId: appr.id, apiKey: key.key };
}

function ownerPrincipal(org: TestOrg): Principal {
  return {
    kind: 'user',
    orgId: org.orgId,
    environment: 'production',
    userId: org.users.owner.id,
    role: 'owner',
    apiKeyId: null,
    sessionId: null,
    permissions: permissionsOf('owner'),
    mfa: true,
    rateLimit: null,
    actor: { type: 'user', id: org.users.owner.id },
  };
}

function credential(f: Fixtures, who: Who): { token: string | null; userId: string | null } {
  if (who === 'none') return { token: null, userId: null };
  if (who === 'api_key') return { token: f.apiKey, userId: null };
  return { token: f.org.users[who].token, userId: f.org.users[who].id };
}

async function call(s: SecurityApp, method: string, url: string, token: string | null, body?: unknown) {
  const r = await s.app.inject({
    method: method as 'GET',
    url,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    ...(body !== undefined ? { payload: body as object } : {}),
  });
  let code: string | undefined;
  try {
    code = r.json()?.error?.code;
  } catch {
    code = undefined;
  }
  return { status: r.statusCode, code, body: r.body };
}

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
      const guarded = s.routes.filter((r) => r.url.startsWith('/v1/') || r.url.startsWith('/.well-known/'));
      assert.ok(guarded.length >= Object.keys(CASES).length);
      for (const r of guarded) {
        const key = `${r.method} ${r.url}`;
        assert.ok(CASES[key], `no RBAC test case for ${key}`);
        assert.ok(r.public || r.permission, `${key} declares nothing`);
        if (r.permission && r.permission !== 'authenticated') {
          assert.ok(rbac().descriptions.has(r.permission), `${key}: ${r.permission} not in the matrix`);
        }
      }
    });

    test('every route × every role, API key and no credentials matches the documented matrix', async () => {
      const whos: Who[] = ['none', ...ROLES, 'api_key'];
      const failures: string[] = [];
      for (const r of s.routes.filter((x) => CASES[`${x.method} ${x.url}`])) {
        const c = CASES[`${r.method} ${r.url}`]!;
        let anonymous: { status: number; code: string | undefined } | undefined;
        for (const who of whos) {
          const cred = credential(a, who);
          const res = await call(s, r.method, c.url(a), cred.token, c.body?.(a, cred.userId));
          if (r.public) {
            // Public routes answer the same whoever calls (credentials are neither needed nor used).
            anonymous ??= res;
            if (
              res.status !== anonymous.status ||
              res.code !== anonymous.code ||
              res.code === 'CUSTOS_FORBIDDEN'
            ) {
              failures.push(`public ${r.method} ${r.url} as ${who}: ${res.status} ${res.code ?? ''}`);
            }
            continue;
          }
          let expectAllowed: boolean;
          if (who === 'none') expectAllowed = false;
          else if (r.permission === 'authenticated') expectAllowed = true;
          else if (who === 'api_key') expectAllowed = rbac().apiKeyGrantable.has(r.permission!);
          else expectAllowed = roleHas(who, r.permission!);
          const denied = res.code !== undefined && DENIAL_CODES.has(res.code);
          const label = `${r.method} ${r.url} as ${who}: ${res.status} ${res.code ?? ''}`;
          if (expectAllowed && (denied || res.status >= 500)) failures.push(`expected allowed — ${label}`);
          if (!expectAllowed) {
            const want = who === 'none' ? 'CUSTOS_UNAUTHENTICATED' : 'CUSTOS_FORBIDDEN';
            if (res.code !== want) failures.push(`expected ${want} — ${label}`);
          }
        }
      }
      assert.deepEqual(failures, []);
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
      const failures: string[] = [];
      for (const r of s.routes.filter((x) => CASES[`${x.method} ${x.url}`])) {
        const c = CASES[`${r.method} ${r.url}`]!;
        for (const who of ['owner', 'auditor', 'api_key'] as const) {
          const cred = credential(b, who);
          // B's credentials, A's ids (in the path, the query and the body).
          let url = c.url(a);
          if (r.method === 'GET' && !url.includes('?'))
            url += `?userId=${a.org.users.approver.id}&actorId=${a.org.users.owner.id}`;
          const res = await call(
            s,
            r.method,
            url.replace('limit=50', `limit=50&actorId=${a.org.users.owner.id}`),
            cred.token,
            c.body?.(a, cred.userId),
          );
          for (const x of secrets) {
            if (res.body.includes(x)) failures.push(`${r.method} ${r.url} as B/${who} returned A's ${x}`);
          }
          if (r.url.includes(':') && res.status === 200)
            failures.push(`${r.method} ${r.url} as B/${who}: 200 on A's id`);
        }
      }
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

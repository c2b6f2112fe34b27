// Acceptance 5 of the identity issue: canary secrets — passwords, TOTP secrets, refresh tokens, API
// keys — appear in the one response that creates them and nowhere else: not in logs, audit
// details, security events, error bodies, later API responses, or any database row in plain text.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { totp } from '../src/identity/totp.ts';
import type { DatabaseHandle } from '../src/store/database.ts';
import { databaseBackends } from './helpers/databases.ts';
import { makeOrg, type SecurityApp, startSecurityApp, type TestOrg } from './helpers/identity-harness.ts';
import { captureLogger } from './helpers/log-capture.ts';

const TABLES = [
  'orgs',
  'users',
  'refresh_tokens',
  'api_keys',
  'approver_keys',
  'audit_log',
  'security_events',
  'jwt_signing_keys',
];

for (const backend of databaseBackends()) {
  describe(`canary secrets [${backend.name}]`, { skip: backend.skip }, () => {
    let db: DatabaseHandle;
    let s: SecurityApp;
    let org: TestOrg;
    const logs = captureLogger('trace');
    const canaries: Record<string, string> = {};
    const laterBodies: string[] = [];

    before(async () => {
      db = await backend.open();
      await db.migrate();
      s = await startSecurityApp({ db, logger: logs });
      org = await makeOrg(s.services, 'canary');
      canaries['owner password'] = org.ownerPassword;
      canaries['owner TOTP secret'] = org.ownerTotpSecret;
    });
    after(async () => {
      await s?.close();
      await db?.close();
    });

    const req = async (method: string, url: string, opts: { token?: string; payload?: object } = {}) => {
      const r = await s.app.inject({
        method: method as 'GET',
        url,
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        ...(opts.payload ? { payload: opts.payload } : {}),
      });
      return r;
    };

    test('secrets are shown once at creation', async () => {
      const chosen = `Canary-Pw-${randomBytes(9).toString('hex')}`;
      canaries['chosen password'] = chosen;
      const created = await req('POST', '/v1/users', {
        token: org.users.owner.token,
        payload: { email: 'op-canary@canary.test', role: 'operator', password: chosen },
      });
      assert.equal(created.statusCode, 201, created.body);
      assert.ok(!created.body.includes(chosen), 'a chosen password is never echoed');
      const gen = await req('POST', '/v1/users', {
        token: org.users.owner.token,
        payload: { email: 'sec-canary@canary.test', role: 'security_officer' },
      });
      canaries['initial password'] = gen.json().initialPassword;
      assert.ok(canaries['initial password']!.length >= 20);

      const login = await req('POST', '/v1/auth/login', {
        payload: { email: 'op-canary@canary.test', password: chosen },
      });
      assert.equal(login.statusCode, 200, login.body);
      canaries['refresh token'] = login.json().refreshToken;
      const rotated = await req('POST', '/v1/auth/refresh', {
        payload: { refreshToken: canaries['refresh token']! },
      });
      canaries['rotated refresh token'] = rotated.json().refreshToken;

      const sec = await req('POST', '/v1/auth/login', {
        payload: { email: 'sec-canary@canary.test', password: canaries['initial password']! },
      });
      const enroll = await req('POST', '/v1/auth/totp/enroll', { token: sec.json().accessToken });
      canaries['enrolled TOTP secret'] = enroll.json().secret;
      const verify = await req('POST', '/v1/auth/totp/verify', {
        token: sec.json().accessToken,
        payload: { code: totp(canaries['enrolled TOTP secret']!) },
      });
      assert.equal(verify.statusCode, 200, verify.body);
      canaries['recovery code'] = verify.json().recoveryCodes[3];

      const key = await req('POST', '/v1/api-keys', {
        token: org.users.owner.token,
        payload: {
          name: 'canary',
          environment: 'production',
          scopes: ['audit:read', 'orgs:read', 'security_events:read'],
        },
      });
      assert.equal(key.statusCode, 201, key.body);
      canaries['API key'] = key.json().key;
      assert.match(canaries['API key']!, /^ck_live_/);
    });

    test('failing requests carrying the secrets do not echo them', async () => {
      const bodies = [
        await req('POST', '/v1/auth/login', {
          payload: { email: org.ownerEmail, password: canaries['chosen password']! },
        }),
        await req('POST', '/v1/auth/login', {
          payload: {
            email: 'op-canary@canary.test',
            password: canaries['chosen password']!,
            extra: canaries['API key'],
          },
        }),
        await req('POST', '/v1/auth/login', {
          payload: {
            email: org.ownerEmail,
            password: org.ownerPassword,
            recoveryCode: canaries['owner TOTP secret']!,
          },
        }),
        await req('POST', '/v1/auth/refresh', { payload: { refreshToken: canaries['refresh token']! } }), // reuse
        await req('GET', '/v1/users', { token: canaries['API key']! }), // not a scope of the key
        await req('GET', '/v1/orgs', { token: `${canaries['API key']!}x` }),
        await req('GET', '/v1/orgs', { token: canaries['rotated refresh token']! }),
        await req('POST', '/v1/users', {
          token: org.users.owner.token,
          payload: {
            email: 'op-canary@canary.test',
            role: 'operator',
            password: canaries['chosen password']!,
          },
        }),
      ];
      for (const r of bodies) {
        assert.ok(r.statusCode >= 400, r.body);
        laterBodies.push(r.body);
      }
    });

    test('later responses, logs, audit, security events and stored rows hold none of them', async () => {
      for (const url of [
        '/v1/users',
        `/v1/users/${org.users.owner.id}`,
        '/v1/api-keys',
        '/v1/approver-keys',
        '/v1/orgs',
        '/v1/audit?limit=1000',
        '/v1/audit?format=jsonl',
        '/v1/audit?format=csv',
        '/v1/security-events?limit=1000',
      ]) {
        const r = await req('GET', url, { token: org.users.owner.token });
        assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
        laterBodies.push(r.body);
      }
      laterBodies.push((await req('GET', '/v1/audit', { token: canaries['API key']! })).body);
      const stored: string[] = [];
      for (const t of TABLES) {
        const { rows } = await sql<{ j: unknown }>`select row_to_json(t) as j from ${sql.table(t)} t`.execute(
          db.db,
        );
        stored.push(`${t}: ${JSON.stringify(rows)}`);
      }
      const logText = logs.text();
      assert.ok(logText.length > 1000, 'something was logged');
      for (const [name, value] of Object.entries(canaries)) {
        assert.ok(value && value.length >= 10, name);
        assert.ok(!logText.includes(value), `${name} in the logs`);
        for (const b of laterBodies)
          assert.ok(!b.includes(value), `${name} in a response: ${b.slice(0, 200)}`);
        for (const rowText of stored)
          assert.ok(!rowText.includes(value), `${name} stored in ${rowText.slice(0, 20)}`);
      }
      // also the random part of the API key alone
      const random = canaries['API key']!.slice('ck_live_'.length);
      assert.ok(!logText.includes(random) && !stored.some((x) => x.includes(random)));
    });
  });
}

// Acceptance 2 of the identity issue and the login rules: JWT attacks (alg none, HS256 with the RSA
// public key, expired, wrong iss/aud, unknown or path-like kid, jku/x5u) are all 401 and fetch
// nothing; refresh-token reuse revokes the family; password + TOTP login, lockout, TOTP enrolment,
// recovery codes; signing-key rotation with overlap.
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { unseal } from '../src/identity/crypto.ts';
import type { SecurityKeys } from '../src/identity/secrets.ts';
import { totp } from '../src/identity/totp.ts';
import type { DatabaseHandle } from '../src/store/database.ts';
import { databaseBackends } from './helpers/databases.ts';
import {
  makeOrg,
  type SecurityApp,
  startSecurityApp,
  type TestOrg,
  testKeys,
} from './helpers/identity-harness.ts';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

for (const backend of databaseBackends()) {
  describe(`authentication [${backend.name}]`, { skip: backend.skip }, () => {
    let db: DatabaseHandle;
    let s: SecurityApp;
    let org: TestOrg;
    let keys: SecurityKeys;
    let fetched = 0;
    let server: Server;
    let serverUrl = '';

    before(async () => {
      db = await backend.open();
      await db.migrate();
      keys = testKeys();
      s = await startSecurityApp({
        db,
        keys,
        env: { CUSTOS_LOCKOUT_THRESHOLD: '3', CUSTOS_JWT_KEY_OVERLAP_SECONDS: '2' },
      });
      org = await makeOrg(s.services, 'auth');
      server = createServer((_req, res) => {
        fetched++;
        res.end('{"keys":[]}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const addr = server.address();
      serverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    });
    after(async () => {
      await new Promise((r) => server?.close(r));
      await s?.close();
      await db?.close();
    });

    const get = (token: string, url = '/v1/orgs') =>
      s.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    const post = (url: string, payload: object, token?: string) =>
      s.app.inject({
        method: 'POST',
        url,
        payload,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });

    /** The real current signing key, to forge tokens that differ from a valid one in one respect. */
    async function realKey() {
      const row = await db.db
        .selectFrom('jwt_signing_keys')
        .selectAll()
        .where('status', '=', 'active')
        .executeTakeFirstOrThrow();
      const jwk = JSON.parse(unseal(keys.identityKek, row.private_enc, `jwt-signing-key:${row.kid}`)) as JWK;
      return { kid: row.kid, key: await importJWK(jwk, 'RS256'), publicJwk: row.public_jwk as JWK };
    }

    function claims(over: Record<string, unknown> = {}) {
      const now = Math.floor(Date.now() / 1000);
      return {
        iss: s.config.authIssuer,
        aud: s.config.authAudience,
        sub: org.users.owner.id,
        org: org.orgId,
        role: 'owner',
        env: 'production',
        sid: randomUUID(),
        mfa: true,
        jti: randomUUID(),
        iat: now,
        exp: now + 600,
        ...over,
      };
    }

    async function forge(header: Record<string, unknown>, payload: Record<string, unknown>) {
      const k = await realKey();
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: k.kid, typ: 'at+jwt', ...header } as never)
        .sign(k.key);
    }

    test('a correctly forged control token is accepted (the attacks below differ in one thing)', async () => {
      const r = await get(await forge({}, claims()));
      assert.equal(r.statusCode, 200, r.body);
    });

    test('JWT attacks are all 401 and nothing is fetched', async () => {
      const k = await realKey();
      const attacks: Record<string, string> = {};
      attacks['alg none'] = `${b64({ alg: 'none', kid: k.kid, typ: 'at+jwt' })}.${b64(claims())}.`;
      // HS256 with the RSA public key (PEM and JWK forms) as the HMAC secret.
      const pem = createPublicKey({ key: k.publicJwk as never, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      });
      for (const [name, secret] of [
        ['HS256 with the public key PEM', pem],
        ['HS256 with the public JWK', JSON.stringify(k.publicJwk)],
      ] as const) {
        const head = `${b64({ alg: 'HS256', kid: k.kid, typ: 'at+jwt' })}.${b64(claims())}`;
        attacks[name] = `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
      }
      const now = Math.floor(Date.now() / 1000);
      attacks['expired'] = await forge({}, claims({ iat: now - 3600, exp: now - 60 }));
      attacks['wrong iss'] = await forge({}, claims({ iss: 'https://evil.example' }));
      attacks['wrong aud'] = await forge({}, claims({ aud: 'another-api' }));
      attacks['no typ'] = await forge({ typ: undefined }, claims());
      attacks['path-like kid'] = await forge({ kid: '../../../../etc/passwd' }, claims());
      attacks['path-like kid 2'] = await forge({ kid: '..%2f..%2fsecrets%2fidentity-key' }, claims());
      const other = await generateKeyPair('RS256', { extractable: true });
      attacks['unknown kid'] = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'RS256', kid: 'ffffffffffffffffffffffffffffffff', typ: 'at+jwt' })
        .sign(other.privateKey);
      attacks['own key, real kid'] = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'RS256', kid: k.kid, typ: 'at+jwt' })
        .sign(other.privateKey);
      attacks['jku header'] = await forge({ jku: `${serverUrl}/jwks.json` }, claims());
      attacks['x5u header'] = await forge({ x5u: `${serverUrl}/cert.pem` }, claims());
      attacks['embedded jwk'] = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', jwk: await exportJWK(other.publicKey) })
        .sign(other.privateKey);
      attacks['jku to attacker key'] = await new SignJWT(claims())
        .setProtectedHeader({
          alg: 'RS256',
          kid: 'attacker-key-0001',
          typ: 'at+jwt',
          jku: `${serverUrl}/jwks.json`,
        })
        .sign(other.privateKey);
      attacks['unknown role'] = await forge({}, claims({ role: 'root' }));
      attacks['garbage'] = 'not.a.jwt';
      for (const [name, token] of Object.entries(attacks)) {
        const r = await get(token);
        assert.equal(r.statusCode, 401, `${name}: ${r.statusCode} ${r.body}`);
        assert.equal(r.json().error.code, 'CUSTOS_UNAUTHENTICATED', name);
      }
      assert.equal(fetched, 0, 'no outbound request');
    });

    test('login: owner needs password + TOTP; a TOTP code works once; recovery codes once', async () => {
      const missing = await post('/v1/auth/login', { email: org.ownerEmail, password: org.ownerPassword });
      assert.equal(missing.statusCode, 401);
      assert.equal(missing.json().error.code, 'CUSTOS_MFA_REQUIRED');
      const code = totp(org.ownerTotpSecret);
      const ok = await post('/v1/auth/login', {
        email: org.ownerEmail,
        password: org.ownerPassword,
        totp: code,
      });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal(ok.json().mfa, true);
      assert.equal((await get(ok.json().accessToken, '/v1/users')).statusCode, 200);
      const replay = await post('/v1/auth/login', {
        email: org.ownerEmail,
        password: org.ownerPassword,
        totp: code,
      });
      assert.equal(replay.statusCode, 401);
      assert.equal(replay.json().error.code, 'CUSTOS_INVALID_CREDENTIALS');
      const wrongPw = await post('/v1/auth/login', {
        email: org.ownerEmail,
        password: 'nope',
        totp: totp(org.ownerTotpSecret),
      });
      assert.equal(wrongPw.json().error.code, 'CUSTOS_INVALID_CREDENTIALS');
      const unknown = await post('/v1/auth/login', { email: 'ghost@nowhere.test', password: 'x' });
      assert.equal(unknown.json().error.code, 'CUSTOS_INVALID_CREDENTIALS');
      // unlock (the failures above count) before the recovery-code check
      await db.db
        .updateTable('users')
        .set({ failed_logins: 0 })
        .where('id', '=', org.users.owner.id)
        .execute();
    });

    test('lockout after repeated failures, a security event, and unlock by an admin', async () => {
      const email = org.users.operator.email;
      for (let i = 0; i < 3; i++) {
        const r = await post('/v1/auth/login', { email, password: `wrong-${i}` });
        assert.equal(r.json().error.code, 'CUSTOS_INVALID_CREDENTIALS');
      }
      const locked = await post('/v1/auth/login', { email, password: 'password-operator-123' });
      assert.equal(locked.statusCode, 423);
      assert.equal(locked.json().error.code, 'CUSTOS_ACCOUNT_LOCKED');
      const events = await get(org.users.security_officer.token, '/v1/security-events?kind=account_locked');
      assert.equal(events.json().events.length, 1);
      const audit = await get(
        org.users.auditor.token,
        `/v1/audit?action=auth.lockout&targetId=${org.users.operator.id}`,
      );
      assert.equal(audit.json().entries.length, 1);
      const unlock = await s.app.inject({
        method: 'PATCH',
        url: `/v1/users/${org.users.operator.id}`,
        payload: { unlock: true },
        headers: { authorization: `Bearer ${org.users.admin.token}` },
      });
      assert.equal(unlock.statusCode, 200, unlock.body);
      const ok = await post('/v1/auth/login', { email, password: 'password-operator-123' });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal(ok.json().mfa, true, 'operators do not need TOTP');
    });

    test('an admin without TOTP gets an enrolment-only session, enrols, and gets a full one', async () => {
      const login = await post('/v1/auth/login', {
        email: org.users.admin.email,
        password: 'password-admin-123',
      });
      assert.equal(login.statusCode, 200, login.body);
      assert.equal(login.json().mfa, false);
      const t = login.json().accessToken as string;
      assert.equal((await get(t, '/v1/users')).json().error.code, 'CUSTOS_MFA_ENROLLMENT_REQUIRED');
      const enroll = await post('/v1/auth/totp/enroll', {}, t);
      assert.equal(enroll.statusCode, 200, enroll.body);
      const { secret, otpauthUri, qrCode } = enroll.json();
      assert.match(otpauthUri, /^otpauth:\/\/totp\//);
      assert.match(qrCode, /^data:image\/png;base64,/);
      assert.equal((await post('/v1/auth/totp/verify', { code: '000000' }, t)).statusCode, 401);
      const verify = await post('/v1/auth/totp/verify', { code: totp(secret) }, t);
      assert.equal(verify.statusCode, 200, verify.body);
      assert.equal(verify.json().recoveryCodes.length, 10);
      assert.equal((await get(verify.json().tokens.accessToken, '/v1/users')).statusCode, 200);
      // the pre-MFA session is over
      const old = await post('/v1/auth/refresh', { refreshToken: login.json().refreshToken });
      assert.equal(old.statusCode, 401);
      // a recovery code replaces the TOTP code, once
      const rc = verify.json().recoveryCodes[0];
      const viaRc = await post('/v1/auth/login', {
        email: org.users.admin.email,
        password: 'password-admin-123',
        recoveryCode: rc,
      });
      assert.equal(viaRc.statusCode, 200, viaRc.body);
      const again = await post('/v1/auth/login', {
        email: org.users.admin.email,
        password: 'password-admin-123',
        recoveryCode: rc,
      });
      assert.equal(again.json().error.code, 'CUSTOS_INVALID_CREDENTIALS');
    });

    test('refresh rotates; reusing an old refresh token revokes the whole family', async () => {
      const login = await post('/v1/auth/login', {
        email: org.users.auditor.email,
        password: 'password-auditor-123',
      });
      assert.equal(login.statusCode, 200, login.body);
      const r1 = login.json().refreshToken as string;
      const second = await post('/v1/auth/refresh', { refreshToken: r1 });
      assert.equal(second.statusCode, 200);
      const r2 = second.json().refreshToken as string;
      assert.notEqual(r1, r2);
      const third = await post('/v1/auth/refresh', { refreshToken: r2 });
      assert.equal(third.statusCode, 200);
      const r3 = third.json().refreshToken as string;
      const access3 = third.json().accessToken as string;
      assert.equal((await get(access3, '/v1/audit?limit=1')).statusCode, 200);
      // an attacker replays r1: the family (including the current r3) dies
      const reuse = await post('/v1/auth/refresh', { refreshToken: r1 });
      assert.equal(reuse.statusCode, 401);
      assert.equal(reuse.json().error.code, 'CUSTOS_REFRESH_TOKEN_REUSED');
      const after = await post('/v1/auth/refresh', { refreshToken: r3 });
      assert.equal(after.statusCode, 401);
      // ...and so do its access tokens, before they expire
      const dead = await get(access3, '/v1/audit?limit=1');
      assert.equal(dead.statusCode, 401);
      assert.equal(dead.json().error.code, 'CUSTOS_UNAUTHENTICATED');
      const rows = await db.db
        .selectFrom('refresh_tokens')
        .select('status')
        .where('user_id', '=', org.users.auditor.id)
        .execute();
      assert.ok(rows.length >= 3 && rows.every((x) => x.status === 'revoked'));
      const ev = await get(org.users.security_officer.token, '/v1/security-events?kind=refresh_token_reused');
      assert.equal(ev.json().events.length, 1);
      // logout revokes the session's refresh tokens
      const l2 = await post('/v1/auth/login', {
        email: org.users.auditor.email,
        password: 'password-auditor-123',
      });
      assert.equal((await get(l2.json().accessToken, '/v1/audit?limit=1')).statusCode, 200);
      const out = await post('/v1/auth/logout', {}, l2.json().accessToken);
      assert.equal(out.statusCode, 200);
      assert.equal(out.json().revoked, 1);
      // the logged-out access token is refused at once, not only after its 15 minutes
      assert.equal((await get(l2.json().accessToken, '/v1/audit?limit=1')).statusCode, 401);
      assert.equal(
        (await post('/v1/auth/refresh', { refreshToken: l2.json().refreshToken })).statusCode,
        401,
      );
    });

    test('signing-key rotation: both keys verify during the overlap, the old one not after', async () => {
      const before = await realKey();
      const oldToken = await forge({}, claims());
      const r = await s.services.tokens.rotate(s.services.audit, { type: 'service', id: 'test' });
      assert.notEqual(r.kid, before.kid);
      const jwks = (await s.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
      assert.deepEqual(jwks.keys.map((k: { kid: string }) => k.kid).sort(), [before.kid, r.kid].sort());
      assert.ok(
        jwks.keys.every((k: Record<string, unknown>) => k['d'] === undefined),
        'no private parts',
      );
      const { token: newToken } = await s.services.tokens.issue({
        sub: org.users.owner.id,
        org: org.orgId,
        role: 'owner',
        env: 'production',
        sid: randomUUID(),
        mfa: true,
      });
      assert.equal(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString()).kid, r.kid);
      assert.equal((await get(oldToken)).statusCode, 200, 'old key still verifies');
      assert.equal((await get(newToken)).statusCode, 200);
      await sleep(2100); // CUSTOS_JWT_KEY_OVERLAP_SECONDS=2
      assert.equal((await get(oldToken)).statusCode, 401, 'old key retired');
      assert.equal((await get(newToken)).statusCode, 200);
      const j2 = (await s.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
      assert.deepEqual(
        j2.keys.map((k: { kid: string }) => k.kid),
        [r.kid],
      );
    });

    test('API keys: last use recorded, revocation ends them, and they never outlive or outrank their creator', async () => {
      // Fresh tokens: the key-rotation test before this one retired the fixtures' signing key.
      const issue = async (sub: string, role: 'owner' | 'admin') =>
        (
          await s.services.tokens.issue({
            sub,
            org: org.orgId,
            role,
            env: 'production',
            sid: randomUUID(),
            mfa: true,
          })
        ).token;
      const ownerToken = await issue(org.users.owner.id, 'owner');
      const patch = (userId: string, payload: object) =>
        s.app.inject({
          method: 'PATCH',
          url: `/v1/users/${userId}`,
          payload,
          headers: { authorization: `Bearer ${ownerToken}` },
        });
      const mint = async (token: string) => {
        const r = await post(
          '/v1/api-keys',
          {
            name: `k-${randomUUID().slice(0, 6)}`,
            environment: 'production',
            scopes: ['orgs:read', 'audit:read'],
          },
          token,
        );
        assert.equal(r.statusCode, 201, r.body);
        return r.json() as { key: string; apiKey: { id: string } };
      };

      // Last use and revocation.
      const k1 = await mint(ownerToken);
      assert.equal((await get(k1.key)).statusCode, 200);
      const listed = await get(ownerToken, '/v1/api-keys');
      const view = listed.json().apiKeys.find((k: { id: string }) => k.id === k1.apiKey.id);
      assert.ok(view.lastUsedAt, 'last use recorded');
      const del = await s.app.inject({
        method: 'DELETE',
        url: `/v1/api-keys/${k1.apiKey.id}`,
        headers: { authorization: `Bearer ${ownerToken}` },
      });
      assert.equal(del.statusCode, 200, del.body);
      assert.equal((await get(k1.key)).statusCode, 401, 'a revoked key is refused');

      // A second admin's key: narrowed when the creator is demoted, dead when the creator is disabled.
      const u = await post(
        '/v1/users',
        { email: `admin2-${randomUUID().slice(0, 6)}@auth.test`, role: 'admin' },
        ownerToken,
      );
      assert.equal(u.statusCode, 201, u.body);
      const adminId = u.json().user.id as string;
      const k2 = await mint(await issue(adminId, 'admin'));
      assert.equal((await get(k2.key, '/v1/audit?limit=1')).statusCode, 200);
      assert.equal((await patch(adminId, { role: 'operator' })).statusCode, 200);
      const narrowed = await get(k2.key, '/v1/audit?limit=1');
      assert.equal(narrowed.statusCode, 403, 'an operator cannot read the audit log, nor can their keys');
      assert.equal(narrowed.json().error.code, 'CUSTOS_FORBIDDEN');
      assert.equal((await get(k2.key)).statusCode, 200, 'what the operator still may do, the key may do');
      assert.equal((await patch(adminId, { status: 'disabled' })).statusCode, 200);
      assert.equal((await get(k2.key)).statusCode, 401, "a disabled creator's keys are refused");
      assert.equal((await patch(adminId, { status: 'active', role: 'admin' })).statusCode, 200);
      assert.equal((await get(k2.key, '/v1/audit?limit=1')).statusCode, 200, 'restored with the creator');
    });
  });
}

// Identity workflows: bootstrap, login (password + TOTP, lockout), refresh-token rotation with
// family revocation on reuse, logout, TOTP enrolment, users, API keys and approver keys. Each state
// change and its audit entry are written in one transaction (fail closed); secrets (passwords,
// TOTP secrets, refresh tokens, API keys) are returned once at creation and never again — only
// hashes or sealed forms are stored, and none goes into audit details, errors or logs.
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { AuditInput, AuditLog } from '../audit/log.ts';
import { AuthError, CustosError, NotFoundError, ValidationError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import {
  ApiKeyRepository,
  type ApiKeyRow,
  ApproverKeyRepository,
  type ApproverKeyRow,
  OrgRepository,
  type OrgRow,
  RefreshTokenRepository,
  UserRepository,
  type UserRow,
} from '../store/repositories/identity.ts';
import type { Database } from '../store/schema.ts';
import { approverKeyProofMessage, parseApproverPublicKey, verifyApproverSignature } from './approver-keys.ts';
import { equalHex, randomToken, seal, sha256Hex, unseal } from './crypto.ts';
import {
  generatePassword,
  hashPassword,
  MIN_PASSWORD_LENGTH,
  type PasswordCost,
  verifyPassword,
} from './password.ts';
import type { Principal, RequestContext } from './principal.ts';
import { isRole, MFA_ROLES, permissionsOf, type Role, rbac } from './rbac.ts';
import type { SecurityEvents } from './security-events.ts';
import type { Environment, TokenService } from './tokens.ts';
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  otpauthUri,
  qrCodeDataUrl,
  verifyTotp,
} from './totp.ts';

export interface IdentitySettings {
  argon2: PasswordCost;
  lockoutThreshold: number;
  lockoutMinutes: number;
  refreshTtlSeconds: number;
}

export interface IdentityDeps {
  db: Kysely<Database>;
  audit: AuditLog;
  tokens: TokenService;
  events: SecurityEvents;
  /** Identity key-encryption key (TOTP secrets at rest). */
  kek: Uint8Array;
  settings: IdentitySettings;
  logger: Logger;
}

export interface TokenPair {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
  mfa: boolean;
}

export interface UserView {
  id: string;
  orgId: string;
  email: string;
  role: Role;
  status: 'active' | 'disabled';
  mfaEnrolled: boolean;
  lockedUntil: string | null;
  lastLoginAt: string | null;
  createdAt: string;
}

export interface ApiKeyView {
  id: string;
  orgId: string;
  environment: Environment;
  name: string;
  redacted: string;
  scopes: string[];
  rateLimit: { burst: number | null; perMinute: number | null };
  createdBy: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface ApproverKeyView {
  id: string;
  orgId: string;
  userId: string;
  publicKey: string;
  label: string;
  status: 'active' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
}

export interface OrgView {
  id: string;
  name: string;
  createdAt: string;
}

export const API_KEY_PREFIX: Record<Environment, string> = { sandbox: 'ck_test_', production: 'ck_live_' };
const REFRESH_PREFIX = 'crt_';
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
const API_KEY_TOUCH_MS = 60_000;
/** How long a replica trusts that a login session is still live (see assertSessionLive). */
const SESSION_CACHE_MS = 5_000;

/** A fixed Argon2id hash to verify against for unknown emails, so timing does not reveal them. */
let dummyHash: Promise<string> | undefined;

export class IdentityService {
  private readonly db: Kysely<Database>;
  /** Sessions seen live recently: `${orgId}/${sessionId}` → until (ms). */
  readonly #liveSessions = new Map<string, number>();

  constructor(private readonly d: IdentityDeps) {
    this.db = d.db;
  }

  // ---------- bootstrap ----------

  /** Creates an organisation and its first owner with one-time credentials (TOTP enrolled). */
  async bootstrap(input: { orgName: string; email: string; actor?: 'cli' | 'dev' }): Promise<{
    org: OrgView;
    user: UserView;
    password: string;
    totpSecret: string;
    totpUri: string;
    recoveryCodes: string[];
  }> {
    const email = normaliseEmail(input.email);
    const name = input.orgName.trim();
    if (name.length === 0 || name.length > 200)
      throw new ValidationError('CUSTOS_VALIDATION', 'bad organisation name');
    const password = generatePassword();
    const passwordHash = await hashPassword(password, this.d.settings.argon2);
    const totpSecret = generateTotpSecret();
    const recovery = generateRecoveryCodes();
    const orgId = randomUUID();
    const userId = randomUUID();
    const { org, user } = await this.tx(async (trx) => {
      const orgs = new OrgRepository(trx);
      if (await orgs.byName(name)) throw new CustosError('CUSTOS_CONFLICT', `organisation "${name}" exists`);
      if (await new UserRepository(trx).byEmailForLogin(email)) {
        throw new CustosError('CUSTOS_CONFLICT', 'a user with this email exists');
      }
      const org = await orgs.insert({ id: orgId, name });
      const user = await new UserRepository(trx).insert({
        id: userId,
        orgId,
        email,
        role: 'owner',
        passwordHash,
        totpSecretEnc: seal(this.d.kek, totpSecret, totpAad(userId)),
        recoveryCodes: recovery.hashes,
        createdBy: null,
      });
      await this.d.audit.append(trx, {
        orgId,
        actor: { type: 'service', id: input.actor ?? 'cli' },
        action: 'org.bootstrap',
        target: { type: 'org', id: orgId },
        details: { name, ownerId: userId },
        sensitive: { email },
      });
      return { org, user };
    });
    return {
      org: orgView(org),
      user: userView(user),
      password,
      totpSecret,
      totpUri: otpauthUri(totpSecret, email),
      recoveryCodes: recovery.codes,
    };
  }

  // ---------- login, refresh, logout ----------

  async login(
    ctx: RequestContext,
    input: {
      email: string;
      password: string;
      totp?: string;
      recoveryCode?: string;
      environment?: Environment;
    },
  ): Promise<TokenPair> {
    const email = normaliseEmail(input.email, false);
    const now = new Date();
    const user = email ? await new UserRepository(this.db).byEmailForLogin(email) : undefined;
    if (user?.status !== 'active') {
      await verifyPassword(await getDummyHash(this.d.settings.argon2), input.password);
      await this.d.events.raise({
        orgId: user?.org_id ?? null,
        kind: 'login_failed',
        severity: 'warning',
        actorType: 'anonymous',
        actorId: null,
        ip: ctx.ip,
        requestId: ctx.requestId,
        details: {
          reason: user ? 'user_disabled' : 'unknown_user',
          email: this.d.audit.protect('email', email),
        },
      });
      throw invalidCredentials();
    }
    if (user.locked_until && user.locked_until > now) {
      await this.d.events.raise({
        orgId: user.org_id,
        kind: 'login_while_locked',
        severity: 'warning',
        actorType: 'user',
        actorId: user.id,
        ip: ctx.ip,
        requestId: ctx.requestId,
        details: { lockedUntil: user.locked_until.toISOString() },
      });
      throw new AuthError('CUSTOS_ACCOUNT_LOCKED', 'too many failed logins: the account is locked', {
        details: { lockedUntil: user.locked_until.toISOString() },
      });
    }
    if (!(await verifyPassword(user.password_hash, input.password))) {
      return this.loginFailed(ctx, user, 'bad_password');
    }
    let mfa = !MFA_ROLES.has(user.role as Role);
    let totpCounter: bigint | null = null;
    let recoveryLeft: string[] | null = null;
    if (user.totp_secret_enc) {
      const secret = unseal(this.d.kek, user.totp_secret_enc, totpAad(user.id));
      if (input.totp) {
        totpCounter = verifyTotp(secret, input.totp, {
          nowMs: now.getTime(),
          lastCounter: user.totp_last_counter === null ? null : BigInt(user.totp_last_counter),
        });
        if (totpCounter === null) return this.loginFailed(ctx, user, 'bad_totp');
      } else if (input.recoveryCode) {
        const h = hashRecoveryCode(input.recoveryCode);
        const codes = user.recovery_codes;
        const i = codes.findIndex((c) => equalHex(c, h));
        if (i < 0) return this.loginFailed(ctx, user, 'bad_recovery_code');
        recoveryLeft = codes.filter((_, j) => j !== i);
      } else {
        // The password was right; a missing second factor still counts towards the lockout so the
        // answer cannot be used to test passwords without limit.
        return this.loginFailed(ctx, user, 'mfa_missing');
      }
      mfa = true;
    }
    const environment = input.environment ?? 'production';
    const refresh = randomToken(REFRESH_PREFIX);
    const familyId = randomUUID();
    await this.tx(async (trx) => {
      const users = new UserRepository(trx);
      const locked = await users.getForUpdate(user.org_id, user.id);
      // A concurrent login may have used this TOTP step already.
      if (
        totpCounter !== null &&
        locked?.totp_last_counter !== null &&
        locked?.totp_last_counter !== undefined
      ) {
        if (totpCounter <= BigInt(locked.totp_last_counter)) throw invalidCredentials();
      }
      await users.update(user.org_id, user.id, {
        failed_logins: 0,
        locked_until: null,
        last_login_at: now,
        ...(totpCounter !== null ? { totp_last_counter: totpCounter } : {}),
        ...(recoveryLeft ? { recovery_codes: recoveryLeft } : {}),
      });
      await this.insertRefresh(trx, user, familyId, refresh, environment, mfa, now);
      await this.d.audit.append(trx, {
        ...this.userAudit(ctx, user),
        action: 'auth.login',
        target: { type: 'user', id: user.id },
        details: {
          method:
            totpCounter !== null ? 'password+totp' : recoveryLeft ? 'password+recovery_code' : 'password',
          environment,
          mfa,
          sessionId: familyId,
          ...(recoveryLeft ? { recoveryCodesLeft: recoveryLeft.length } : {}),
        },
      });
    });
    return this.pair(user, familyId, environment, mfa, refresh);
  }

  async refresh(ctx: RequestContext, refreshToken: string): Promise<TokenPair> {
    if (!refreshToken.startsWith(REFRESH_PREFIX)) throw unauthenticated();
    const hash = sha256Hex(refreshToken);
    const now = new Date();
    type Outcome =
      | { kind: 'ok'; user: UserRow; familyId: string; env: Environment; mfa: boolean; token: string }
      | { kind: 'reused'; orgId: string; userId: string; familyId: string; revoked: number }
      | { kind: 'invalid' };
    const outcome = await this.tx<Outcome>(async (trx) => {
      const repo = new RefreshTokenRepository(trx);
      const row = await repo.byHashForUpdate(hash);
      if (!row || !equalHex(row.token_hash, hash)) return { kind: 'invalid' };
      // Revoked (logout, reuse, role change): the session is already dead.
      if (row.status === 'revoked') return { kind: 'invalid' };
      if (row.status !== 'active') {
        // Reuse of a rotated token: someone else may hold the family. Revoke it all.
        const revoked = await repo.revokeFamily(row.org_id, row.family_id);
        this.#liveSessions.clear();
        await this.d.audit.append(trx, {
          orgId: row.org_id,
          actor: { type: 'user', id: row.user_id },
          action: 'auth.refresh_token_reuse',
          target: { type: 'session', id: row.family_id },
          outcome: 'denied',
          requestId: ctx.requestId,
          details: { revoked },
          sensitive: { ip: ctx.ip },
        });
        return { kind: 'reused', orgId: row.org_id, userId: row.user_id, familyId: row.family_id, revoked };
      }
      if (row.expires_at <= now) return { kind: 'invalid' };
      const user = await new UserRepository(trx).get(row.org_id, row.user_id);
      if (user?.status !== 'active' || (user.locked_until && user.locked_until > now)) {
        await repo.revokeFamily(row.org_id, row.family_id);
        this.#liveSessions.clear();
        return { kind: 'invalid' };
      }
      if (!(await repo.markRotated(row.org_id, row.id, now))) return { kind: 'invalid' };
      const token = randomToken(REFRESH_PREFIX);
      const env = row.environment as Environment;
      await this.insertRefresh(trx, user, row.family_id, token, env, row.mfa, now);
      await this.d.audit.append(trx, {
        ...this.userAudit(ctx, user),
        action: 'auth.refresh',
        target: { type: 'session', id: row.family_id },
      });
      return { kind: 'ok', user, familyId: row.family_id, env, mfa: row.mfa, token };
    });
    if (outcome.kind === 'reused') {
      await this.d.events.raise({
        orgId: outcome.orgId,
        kind: 'refresh_token_reused',
        severity: 'critical',
        actorType: 'user',
        actorId: outcome.userId,
        ip: ctx.ip,
        requestId: ctx.requestId,
        details: { sessionId: outcome.familyId, revoked: outcome.revoked },
      });
      throw new AuthError(
        'CUSTOS_REFRESH_TOKEN_REUSED',
        'refresh token already used: the session is revoked',
      );
    }
    if (outcome.kind === 'invalid') throw unauthenticated();
    return this.pair(outcome.user, outcome.familyId, outcome.env, outcome.mfa, outcome.token);
  }

  async logout(p: Principal, ctx: RequestContext): Promise<{ revoked: number }> {
    if (p.kind !== 'user' || !p.sessionId) {
      throw new ValidationError('CUSTOS_VALIDATION', 'logout ends a user session; revoke API keys instead');
    }
    const sid = p.sessionId;
    return this.tx(async (trx) => {
      const revoked = await new RefreshTokenRepository(trx).revokeFamily(p.orgId, sid);
      this.#liveSessions.clear();
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'auth.logout',
        target: { type: 'session', id: sid },
        details: { revoked },
      });
      return { revoked };
    });
  }

  // ---------- TOTP enrolment ----------

  async totpEnroll(
    p: Principal,
    ctx: RequestContext,
  ): Promise<{ otpauthUri: string; qrCode: string; secret: string }> {
    const user = await this.currentUser(p);
    if (user.totp_secret_enc) {
      throw new CustosError('CUSTOS_CONFLICT', 'TOTP is already enrolled; an admin must reset it first');
    }
    const secret = generateTotpSecret();
    await this.tx(async (trx) => {
      await new UserRepository(trx).update(p.orgId, user.id, {
        totp_pending_enc: seal(this.d.kek, secret, totpAad(user.id, 'pending')),
      });
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'auth.totp.enroll_start',
        target: { type: 'user', id: user.id },
      });
    });
    const uri = otpauthUri(secret, user.email);
    return { otpauthUri: uri, qrCode: await qrCodeDataUrl(uri), secret };
  }

  /** Confirms enrolment with a first code; returns recovery codes (once) and a full-MFA session. */
  async totpVerify(
    p: Principal,
    ctx: RequestContext,
    code: string,
  ): Promise<{ recoveryCodes: string[]; tokens: TokenPair }> {
    const user = await this.currentUser(p);
    if (!user.totp_pending_enc) throw new CustosError('CUSTOS_CONFLICT', 'no TOTP enrolment is pending');
    const secret = unseal(this.d.kek, user.totp_pending_enc, totpAad(user.id, 'pending'));
    const counter = verifyTotp(secret, code);
    if (counter === null) {
      await this.d.events.raise({
        orgId: p.orgId,
        kind: 'totp_enroll_failed',
        severity: 'info',
        actorType: 'user',
        actorId: user.id,
        ip: ctx.ip,
        requestId: ctx.requestId,
        details: {},
      });
      throw new AuthError('CUSTOS_INVALID_CREDENTIALS', 'the TOTP code is not valid');
    }
    const recovery = generateRecoveryCodes();
    const refresh = randomToken(REFRESH_PREFIX);
    const familyId = randomUUID();
    const env = p.environment;
    await this.tx(async (trx) => {
      const users = new UserRepository(trx);
      await users.update(p.orgId, user.id, {
        totp_secret_enc: seal(this.d.kek, secret, totpAad(user.id)),
        totp_pending_enc: null,
        totp_last_counter: counter,
        recovery_codes: recovery.hashes,
      });
      // The pre-MFA session ends; the new one is fully authenticated.
      if (p.sessionId) await new RefreshTokenRepository(trx).revokeFamily(p.orgId, p.sessionId);
      this.#liveSessions.clear();
      await this.insertRefresh(trx, user, familyId, refresh, env, true, new Date());
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'auth.totp.enroll',
        target: { type: 'user', id: user.id },
        details: { recoveryCodes: recovery.codes.length, sessionId: familyId },
      });
    });
    return { recoveryCodes: recovery.codes, tokens: await this.pair(user, familyId, env, true, refresh) };
  }

  // ---------- organisations ----------

  async getOrg(p: Principal, orgId: string): Promise<OrgView> {
    if (orgId !== p.orgId) throw notFound('organisation');
    const org = await new OrgRepository(this.db).get(p.orgId);
    if (!org) throw notFound('organisation');
    return orgView(org);
  }

  async renameOrg(p: Principal, ctx: RequestContext, orgId: string, name: string): Promise<OrgView> {
    if (orgId !== p.orgId) throw notFound('organisation');
    return this.tx(async (trx) => {
      const org = await new OrgRepository(trx).rename(p.orgId, name.trim());
      if (!org) throw notFound('organisation');
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'org.rename',
        target: { type: 'org', id: org.id },
        details: { name: org.name },
      });
      return orgView(org);
    });
  }

  // ---------- users ----------

  async listUsers(p: Principal, limit = 100, after?: string): Promise<UserView[]> {
    return (await new UserRepository(this.db).list(p.orgId, limit, after)).map(userView);
  }

  async getUser(p: Principal, userId: string): Promise<UserView> {
    const u = await new UserRepository(this.db).get(p.orgId, userId);
    if (!u) throw notFound('user');
    return userView(u);
  }

  /** Creates a user with a one-time initial password (returned once). */
  async createUser(
    p: Principal,
    ctx: RequestContext,
    input: { email: string; role: Role; password?: string },
  ): Promise<{ user: UserView; initialPassword: string | null }> {
    const email = normaliseEmail(input.email);
    this.assertMayAssign(p, input.role);
    if (input.password !== undefined && input.password.length < MIN_PASSWORD_LENGTH) {
      throw new ValidationError(
        'CUSTOS_VALIDATION',
        `password must have at least ${MIN_PASSWORD_LENGTH} characters`,
      );
    }
    const initial = input.password === undefined ? generatePassword() : null;
    const passwordHash = await hashPassword(input.password ?? initial!, this.d.settings.argon2);
    const id = randomUUID();
    const user = await this.tx(async (trx) => {
      const users = new UserRepository(trx);
      if (await users.byEmailForLogin(email))
        throw new CustosError('CUSTOS_CONFLICT', 'a user with this email exists');
      const user = await users.insert({
        id,
        orgId: p.orgId,
        email,
        role: input.role,
        passwordHash,
        totpSecretEnc: null,
        recoveryCodes: [],
        createdBy: p.userId,
      });
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'user.create',
        target: { type: 'user', id },
        details: { role: input.role },
        sensitive: { email },
      });
      return user;
    });
    return { user: userView(user), initialPassword: initial };
  }

  async updateUser(
    p: Principal,
    ctx: RequestContext,
    userId: string,
    input: { role?: Role; status?: 'active' | 'disabled'; unlock?: boolean; resetTotp?: boolean },
  ): Promise<UserView> {
    return this.tx(async (trx) => {
      const users = new UserRepository(trx);
      const u = await users.getForUpdate(p.orgId, userId);
      if (!u) throw notFound('user');
      if (userId === p.userId && (input.role !== undefined || input.status !== undefined)) {
        throw new AuthError('CUSTOS_FORBIDDEN', 'you cannot change your own role or status');
      }
      if (input.role !== undefined) this.assertMayAssign(p, input.role);
      if (u.role === 'owner' || u.role === 'admin') this.assertMayAssign(p, u.role as Role);
      const demotesOwner =
        u.role === 'owner' &&
        u.status === 'active' &&
        ((input.role && input.role !== 'owner') || input.status === 'disabled');
      if (demotesOwner && (await users.countActiveOwners(p.orgId)) <= 1) {
        throw new CustosError('CUSTOS_CONFLICT', 'the last active owner cannot be demoted or disabled');
      }
      const updated = await users.update(p.orgId, userId, {
        ...(input.role !== undefined ? { role: input.role } : {}),
        ...(input.status !== undefined ? { status: input.status } : {}),
        ...(input.unlock ? { locked_until: null, failed_logins: 0 } : {}),
        ...(input.resetTotp
          ? { totp_secret_enc: null, totp_pending_enc: null, totp_last_counter: null, recovery_codes: [] }
          : {}),
      });
      // Changing who someone is ends their sessions (access tokens expire within 15 minutes).
      if (input.role !== undefined || input.status === 'disabled' || input.resetTotp) {
        await new RefreshTokenRepository(trx).revokeAllForUser(p.orgId, userId);
        this.#liveSessions.clear();
      }
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'user.update',
        target: { type: 'user', id: userId },
        details: {
          ...(input.role !== undefined ? { role: { from: u.role, to: input.role } } : {}),
          ...(input.status !== undefined ? { status: { from: u.status, to: input.status } } : {}),
          ...(input.unlock ? { unlock: true } : {}),
          ...(input.resetTotp ? { resetTotp: true } : {}),
        },
      });
      return userView(updated!);
    });
  }

  // ---------- API keys ----------

  async createApiKey(
    p: Principal,
    ctx: RequestContext,
    input: {
      name: string;
      environment: Environment;
      scopes: string[];
      rateLimit?: { burst?: number; perMinute?: number };
    },
  ): Promise<{ apiKey: ApiKeyView; key: string }> {
    const m = rbac();
    const scopes = [...new Set(input.scopes)].sort();
    for (const s of scopes) {
      if (!m.apiKeyGrantable.has(s)) {
        throw new ValidationError('CUSTOS_VALIDATION', `scope ${s} cannot be given to an API key`, {
          details: { scope: s },
        });
      }
      if (!p.permissions.has(s)) {
        throw new AuthError('CUSTOS_FORBIDDEN', `you cannot grant ${s}: you do not hold it`, {
          details: { scope: s },
        });
      }
    }
    const key = randomToken(API_KEY_PREFIX[input.environment]);
    const random = key.slice(API_KEY_PREFIX[input.environment].length);
    const redacted = `${API_KEY_PREFIX[input.environment]}${random.slice(0, 4)}…${random.slice(-4)}`;
    const id = randomUUID();
    const row = await this.tx(async (trx) => {
      const row = await new ApiKeyRepository(trx).insert({
        id,
        orgId: p.orgId,
        environment: input.environment,
        name: input.name,
        redacted,
        keyHash: sha256Hex(key),
        scopes,
        rateLimitBurst: input.rateLimit?.burst ?? null,
        rateLimitPerMinute: input.rateLimit?.perMinute ?? null,
        createdBy: p.userId,
      });
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'api_key.create',
        target: { type: 'api_key', id },
        details: { name: input.name, environment: input.environment, scopes, redacted },
      });
      return row;
    });
    return { apiKey: apiKeyView(row), key };
  }

  async listApiKeys(p: Principal, environment?: Environment): Promise<ApiKeyView[]> {
    return (await new ApiKeyRepository(this.db).list(p.orgId, environment)).map(apiKeyView);
  }

  async revokeApiKey(p: Principal, ctx: RequestContext, id: string): Promise<ApiKeyView> {
    return this.tx(async (trx) => {
      const repo = new ApiKeyRepository(trx);
      const row = await repo.revoke(p.orgId, id, new Date());
      if (!row) {
        const existing = await repo.get(p.orgId, id);
        if (!existing) throw notFound('API key');
        return apiKeyView(existing); // already revoked: idempotent
      }
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'api_key.revoke',
        target: { type: 'api_key', id },
      });
      return apiKeyView(row);
    });
  }

  /**
   * Access tokens are stateless JWTs, so a logout, a revoked family or a change to the user would
   * otherwise leave them valid until they expire (15 minutes). Every JWT-authenticated request
   * checks that its session still has an active refresh token; a positive answer is cached for
   * SESSION_CACHE_MS per replica (the cache is cleared here on every revocation, so on this replica
   * the effect is immediate, on others within that time). Tokens minted without a login session
   * (service tokens in tests and benchmarks) have no family and are not affected.
   */
  async assertSessionLive(p: Principal): Promise<void> {
    if (!p.sessionId) return;
    const key = `${p.orgId}/${p.sessionId}`;
    const until = this.#liveSessions.get(key);
    if (until !== undefined && until > Date.now()) return;
    const state = await new RefreshTokenRepository(this.db).sessionState(p.orgId, p.sessionId);
    if (state === 'ended') {
      this.#liveSessions.delete(key);
      throw new AuthError('CUSTOS_UNAUTHENTICATED', 'this session has ended; sign in again');
    }
    if (this.#liveSessions.size >= 10_000) this.#liveSessions.clear();
    this.#liveSessions.set(key, Date.now() + SESSION_CACHE_MS);
  }

  /** Authenticates an API key; null when unknown or revoked. Compared in constant time. */
  async authenticateApiKey(key: string): Promise<Principal | null> {
    const env: Environment | null = key.startsWith(API_KEY_PREFIX.sandbox)
      ? 'sandbox'
      : key.startsWith(API_KEY_PREFIX.production)
        ? 'production'
        : null;
    if (!env || key.length > 200) return null;
    const hash = sha256Hex(key);
    const repo = new ApiKeyRepository(this.db);
    const row = await repo.byHash(hash);
    if (!row || !equalHex(row.key_hash, hash) || row.environment !== env) return null;
    if (row.revoked_at) return null;
    // A key acts for its creator: it dies with a disabled or deleted creator and never holds more
    // than the creator's current role does (a demotion narrows the keys the person made).
    if (row.creator_status !== 'active' || !row.creator_role || !isRole(row.creator_role)) return null;
    const creatorPermissions = permissionsOf(row.creator_role);
    const now = new Date();
    if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > API_KEY_TOUCH_MS) {
      await repo
        .touch(row.org_id, row.id, now)
        .catch((err) => this.d.logger.warn({ err }, 'api key last-used update failed'));
    }
    const grantable = rbac().apiKeyGrantable;
    return {
      kind: 'api_key',
      orgId: row.org_id,
      environment: env,
      userId: row.created_by,
      role: null,
      apiKeyId: row.id,
      sessionId: null,
      permissions: new Set(row.scopes.filter((s) => grantable.has(s) && creatorPermissions.has(s))),
      mfa: true,
      rateLimit: { burst: row.rate_limit_burst, perMinute: row.rate_limit_per_minute },
      actor: { type: 'api_key', id: row.id },
    };
  }

  // ---------- approver keys ----------

  async registerApproverKey(
    p: Principal,
    ctx: RequestContext,
    input: { publicKey: string; label: string; proof: string },
  ): Promise<ApproverKeyView> {
    if (p.kind !== 'user' || !p.userId)
      throw new AuthError('CUSTOS_FORBIDDEN', 'approver keys belong to people');
    const publicKey = parseApproverPublicKey(input.publicKey);
    if (
      !verifyApproverSignature(publicKey, approverKeyProofMessage(p.orgId, p.userId, publicKey), input.proof)
    ) {
      throw new ValidationError(
        'CUSTOS_INVALID_APPROVER_KEY',
        'proof must be the signature of the registration message by this key (custos keys approver-init --org --user)',
      );
    }
    const id = randomUUID();
    const userId = p.userId;
    const row = await this.tx(async (trx) => {
      const row = await new ApproverKeyRepository(trx).insert({
        id,
        orgId: p.orgId,
        userId,
        publicKey,
        label: input.label,
      });
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'approver_key.register',
        target: { type: 'approver_key', id },
        details: { publicKey, label: input.label },
      });
      return row;
    });
    return approverKeyView(row);
  }

  async listApproverKeys(p: Principal, userId?: string): Promise<ApproverKeyView[]> {
    return (await new ApproverKeyRepository(this.db).list(p.orgId, userId)).map(approverKeyView);
  }

  async revokeApproverKey(p: Principal, ctx: RequestContext, id: string): Promise<ApproverKeyView> {
    return this.tx(async (trx) => {
      const repo = new ApproverKeyRepository(trx);
      const row = await repo.revoke(p.orgId, id, p.actor.id ?? 'unknown', new Date());
      if (!row) {
        const existing = await repo.get(p.orgId, id);
        if (!existing) throw notFound('approver key');
        return approverKeyView(existing);
      }
      await this.d.audit.append(trx, {
        ...audit(p, ctx),
        action: 'approver_key.revoke',
        target: { type: 'approver_key', id },
      });
      return approverKeyView(row);
    });
  }

  // ---------- internals ----------

  private async loginFailed(ctx: RequestContext, user: UserRow, reason: string): Promise<never> {
    const now = new Date();
    const locked = await this.tx(async (trx) => {
      const users = new UserRepository(trx);
      const u = (await users.getForUpdate(user.org_id, user.id)) ?? user;
      const failed = u.failed_logins + 1;
      const lock = failed >= this.d.settings.lockoutThreshold;
      const lockedUntil = lock ? new Date(now.getTime() + this.d.settings.lockoutMinutes * 60_000) : null;
      await users.update(
        user.org_id,
        user.id,
        lock ? { failed_logins: 0, locked_until: lockedUntil } : { failed_logins: failed },
      );
      await this.d.audit.append(trx, {
        ...this.userAudit(ctx, user),
        action: 'auth.login',
        target: { type: 'user', id: user.id },
        outcome: 'failure',
        details: { reason, failedAttempts: failed },
      });
      if (lock) {
        await this.d.audit.append(trx, {
          ...this.userAudit(ctx, user),
          actor: { type: 'service', id: 'lockout' },
          action: 'auth.lockout',
          target: { type: 'user', id: user.id },
          details: { lockedUntil: lockedUntil!.toISOString(), failedAttempts: failed },
        });
      }
      return lockedUntil;
    });
    await this.d.events.raise({
      orgId: user.org_id,
      kind: 'login_failed',
      severity: 'warning',
      actorType: 'user',
      actorId: user.id,
      ip: ctx.ip,
      requestId: ctx.requestId,
      details: { reason },
    });
    if (locked) {
      await this.d.events.raise({
        orgId: user.org_id,
        kind: 'account_locked',
        severity: 'critical',
        actorType: 'user',
        actorId: user.id,
        ip: ctx.ip,
        requestId: ctx.requestId,
        details: { lockedUntil: locked.toISOString() },
      });
    }
    if (reason === 'mfa_missing') {
      throw new AuthError('CUSTOS_MFA_REQUIRED', 'a TOTP code (or a recovery code) is required');
    }
    throw invalidCredentials();
  }

  private assertMayAssign(p: Principal, role: Role): void {
    if ((role === 'owner' || role === 'admin') && p.role !== 'owner') {
      throw new AuthError('CUSTOS_FORBIDDEN', `only an owner may manage ${role}s`);
    }
  }

  private async currentUser(p: Principal): Promise<UserRow> {
    if (p.kind !== 'user' || !p.userId)
      throw new ValidationError('CUSTOS_VALIDATION', 'only people enrol TOTP');
    const u = await new UserRepository(this.db).get(p.orgId, p.userId);
    if (!u) throw unauthenticated();
    return u;
  }

  private async insertRefresh(
    trx: Transaction<Database>,
    user: UserRow,
    familyId: string,
    token: string,
    environment: Environment,
    mfa: boolean,
    now: Date,
  ): Promise<void> {
    await new RefreshTokenRepository(trx).insert({
      id: randomUUID(),
      orgId: user.org_id,
      userId: user.id,
      familyId,
      tokenHash: sha256Hex(token),
      environment,
      mfa,
      expiresAt: new Date(now.getTime() + this.d.settings.refreshTtlSeconds * 1000),
    });
  }

  private async pair(
    user: UserRow,
    sid: string,
    env: Environment,
    mfa: boolean,
    refreshToken: string,
  ): Promise<TokenPair> {
    if (!isRole(user.role)) throw new CustosError('CUSTOS_INTERNAL', 'user has an unknown role');
    const { token, expiresIn } = await this.d.tokens.issue({
      sub: user.id,
      org: user.org_id,
      role: user.role,
      env,
      sid,
      mfa,
    });
    return {
      accessToken: token,
      tokenType: 'Bearer',
      expiresIn,
      refreshToken,
      refreshExpiresIn: this.d.settings.refreshTtlSeconds,
      mfa,
    };
  }

  private userAudit(
    ctx: RequestContext,
    user: UserRow,
  ): Pick<AuditInput, 'orgId' | 'actor' | 'requestId' | 'sensitive'> {
    return {
      orgId: user.org_id,
      actor: { type: 'user', id: user.id },
      requestId: ctx.requestId,
      sensitive: { ip: ctx.ip },
    };
  }

  /** A transaction whose audit entries are written at its end (see AuditLog.transaction). */
  private tx<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.d.audit.transaction(this.db, fn);
  }
}

/** Principal from verified access-token claims. */
export function principalFromClaims(c: {
  sub: string;
  org: string;
  role: Role;
  env: Environment;
  sid: string;
  mfa: boolean;
}): Principal {
  return {
    kind: 'user',
    orgId: c.org,
    environment: c.env,
    userId: c.sub,
    role: c.role,
    apiKeyId: null,
    sessionId: c.sid,
    permissions: permissionsOf(c.role),
    mfa: c.mfa,
    rateLimit: null,
    actor: { type: 'user', id: c.sub },
  };
}

/** The audit fields every principal-initiated entry shares. */
export function audit(
  p: Principal,
  ctx: RequestContext,
): Pick<AuditInput, 'orgId' | 'actor' | 'requestId' | 'sensitive'> {
  return { orgId: p.orgId, actor: p.actor, requestId: ctx.requestId, sensitive: { ip: ctx.ip } };
}

function normaliseEmail(email: string, strict = true): string {
  const e = email.trim().toLowerCase();
  if (strict && !EMAIL.test(e)) throw new ValidationError('CUSTOS_VALIDATION', 'invalid email address');
  return e;
}

function totpAad(userId: string, kind: 'active' | 'pending' = 'active'): string {
  return `totp:${kind}:${userId}`;
}

function getDummyHash(cost: PasswordCost): Promise<string> {
  dummyHash ??= hashPassword(randomUUID(), cost);
  return dummyHash;
}

function invalidCredentials(): AuthError {
  return new AuthError('CUSTOS_INVALID_CREDENTIALS', 'invalid email, password or second factor');
}

function unauthenticated(): AuthError {
  return new AuthError('CUSTOS_UNAUTHENTICATED', 'invalid or expired credentials');
}

function notFound(what: string): NotFoundError {
  return new NotFoundError('CUSTOS_NOT_FOUND', `${what} not found`);
}

function iso(d: Date | null): string | null {
  return d ? d.toISOString() : null;
}

export function orgView(o: OrgRow): OrgView {
  return { id: o.id, name: o.name, createdAt: o.created_at.toISOString() };
}

export function userView(u: UserRow): UserView {
  return {
    id: u.id,
    orgId: u.org_id,
    email: u.email,
    role: u.role as Role,
    status: u.status as UserView['status'],
    mfaEnrolled: u.totp_secret_enc !== null,
    lockedUntil: u.locked_until && u.locked_until > new Date() ? u.locked_until.toISOString() : null,
    lastLoginAt: iso(u.last_login_at),
    createdAt: u.created_at.toISOString(),
  };
}

export function apiKeyView(k: ApiKeyRow): ApiKeyView {
  return {
    id: k.id,
    orgId: k.org_id,
    environment: k.environment as Environment,
    name: k.name,
    redacted: k.redacted,
    scopes: k.scopes,
    rateLimit: { burst: k.rate_limit_burst, perMinute: k.rate_limit_per_minute },
    createdBy: k.created_by,
    createdAt: k.created_at.toISOString(),
    lastUsedAt: iso(k.last_used_at),
    revokedAt: iso(k.revoked_at),
  };
}

export function approverKeyView(k: ApproverKeyRow): ApproverKeyView {
  return {
    id: k.id,
    orgId: k.org_id,
    userId: k.user_id,
    publicKey: k.public_key,
    label: k.label,
    status: k.status as ApproverKeyView['status'],
    createdAt: k.created_at.toISOString(),
    revokedAt: iso(k.revoked_at),
  };
}

// Identity rows: organisations, users, refresh tokens, API keys, approver keys, JWT signing keys.
// Tenancy is enforced here: every method on organisation-owned rows takes the org id and puts it
// in the WHERE clause, so a route cannot forget it. The only lookups without an org id are the
// authentication entry points (email at login, token/key hash), which return the row's org id for
// everything after them.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type {
  ApiKeyTable,
  ApproverKeyTable,
  Database,
  JwtSigningKeyTable,
  OrgTable,
  RefreshTokenTable,
  UserTable,
} from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

export type OrgRow = Selectable<OrgTable>;
export type UserRow = Selectable<UserTable>;
export type RefreshTokenRow = Selectable<RefreshTokenTable>;
export type ApiKeyRow = Selectable<ApiKeyTable>;
export type ApproverKeyRow = Selectable<ApproverKeyTable>;
export type SigningKeyRow = Selectable<JwtSigningKeyTable>;

export class OrgRepository {
  constructor(private readonly db: Db) {}
  async insert(o: { id: string; name: string }): Promise<OrgRow> {
    return this.db.insertInto('orgs').values(o).returningAll().executeTakeFirstOrThrow();
  }
  async get(orgId: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('orgs').selectAll().where('id', '=', orgId).executeTakeFirst();
  }
  async byName(name: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();
  }
  async rename(orgId: string, name: string): Promise<OrgRow | undefined> {
    return this.db
      .updateTable('orgs')
      .set({ name })
      .where('id', '=', orgId)
      .returningAll()
      .executeTakeFirst();
  }
  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('orgs')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

export interface NewUser {
  id: string;
  orgId: string;
  email: string;
  role: string;
  passwordHash: string;
  totpSecretEnc: string | null;
  recoveryCodes: string[];
  createdBy: string | null;
}

export class UserRepository {
  constructor(private readonly db: Db) {}

  async insert(u: NewUser): Promise<UserRow> {
    return this.db
      .insertInto('users')
      .values({
        id: u.id,
        org_id: u.orgId,
        email: u.email,
        role: u.role,
        password_hash: u.passwordHash,
        totp_secret_enc: u.totpSecretEnc,
        totp_pending_enc: null,
        totp_last_counter: null,
        recovery_codes: JSON.stringify(u.recoveryCodes),
        locked_until: null,
        last_login_at: null,
        created_by: u.createdBy,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Login entry point: the only user lookup without an org id. */
  async byEmailForLogin(email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  }

  async get(orgId: string, userId: string): Promise<UserRow | undefined> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('id', '=', userId)
      .executeTakeFirst();
  }

  /** Row lock for read-modify-write (login counters, TOTP counter). */
  async getForUpdate(orgId: string, userId: string): Promise<UserRow | undefined> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('id', '=', userId)
      .forUpdate()
      .executeTakeFirst();
  }

  async list(orgId: string, limit: number, afterId?: string): Promise<UserRow[]> {
    let q = this.db.selectFrom('users').selectAll().where('org_id', '=', orgId);
    if (afterId) q = q.where('id', '>', afterId);
    return q.orderBy('id').limit(limit).execute();
  }

  async countActiveOwners(orgId: string): Promise<number> {
    const r = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('org_id', '=', orgId)
      .where('role', '=', 'owner')
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async update(
    orgId: string,
    userId: string,
    set: Partial<{
      role: string;
      status: string;
      password_hash: string;
      totp_secret_enc: string | null;
      totp_pending_enc: string | null;
      totp_last_counter: bigint | null;
      recovery_codes: string[];
      failed_logins: number;
      locked_until: Date | null;
      last_login_at: Date | null;
    }>,
  ): Promise<UserRow | undefined> {
    const { recovery_codes, ...rest } = set;
    return this.db
      .updateTable('users')
      .set({
        ...rest,
        ...(recovery_codes ? { recovery_codes: JSON.stringify(recovery_codes) } : {}),
        updated_at: new Date(),
      })
      .where('org_id', '=', orgId)
      .where('id', '=', userId)
      .returningAll()
      .executeTakeFirst();
  }
}

export class RefreshTokenRepository {
  constructor(private readonly db: Db) {}

  async insert(t: {
    id: string;
    orgId: string;
    userId: string;
    familyId: string;
    tokenHash: string;
    environment: string;
    mfa: boolean;
    expiresAt: Date;
  }): Promise<void> {
    await this.db
      .insertInto('refresh_tokens')
      .values({
        id: t.id,
        org_id: t.orgId,
        user_id: t.userId,
        family_id: t.familyId,
        token_hash: t.tokenHash,
        environment: t.environment,
        mfa: t.mfa,
        status: 'active',
        expires_at: t.expiresAt,
        used_at: null,
      })
      .execute();
  }

  /** Refresh entry point: by hash of the presented token (locked for the rotation). */
  async byHashForUpdate(tokenHash: string): Promise<RefreshTokenRow | undefined> {
    return this.db
      .selectFrom('refresh_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .forUpdate()
      .executeTakeFirst();
  }

  /** Marks an active token used; false if it was not active any more (a concurrent use). */
  async markRotated(orgId: string, id: string, now: Date): Promise<boolean> {
    const r = await this.db
      .updateTable('refresh_tokens')
      .set({ status: 'rotated', used_at: now })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return r.numUpdatedRows > 0n;
  }

  async revokeFamily(orgId: string, familyId: string): Promise<number> {
    const r = await this.db
      .updateTable('refresh_tokens')
      .set({ status: 'revoked' })
      .where('org_id', '=', orgId)
      .where('family_id', '=', familyId)
      .where('status', '!=', 'revoked')
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async revokeAllForUser(orgId: string, userId: string): Promise<number> {
    const r = await this.db
      .updateTable('refresh_tokens')
      .set({ status: 'revoked' })
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Whether a login session (refresh-token family) still has an active token: 'ended' once it was
   * logged out, revoked on reuse or by a change to the user; 'none' when no such family exists.
   */
  async sessionState(orgId: string, familyId: string): Promise<'live' | 'ended' | 'none'> {
    const rows = await this.db
      .selectFrom('refresh_tokens')
      .select('status')
      .where('org_id', '=', orgId)
      .where('family_id', '=', familyId)
      .execute();
    if (rows.length === 0) return 'none';
    return rows.some((r) => r.status === 'active') ? 'live' : 'ended';
  }

  async family(orgId: string, familyId: string): Promise<RefreshTokenRow[]> {
    return this.db
      .selectFrom('refresh_tokens')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('family_id', '=', familyId)
      .orderBy('created_at')
      .execute();
  }
}

export class ApiKeyRepository {
  constructor(private readonly db: Db) {}

  async insert(k: {
    id: string;
    orgId: string;
    environment: string;
    name: string;
    redacted: string;
    keyHash: string;
    scopes: string[];
    rateLimitBurst: number | null;
    rateLimitPerMinute: number | null;
    createdBy: string | null;
  }): Promise<ApiKeyRow> {
    return this.db
      .insertInto('api_keys')
      .values({
        id: k.id,
        org_id: k.orgId,
        environment: k.environment,
        name: k.name,
        redacted: k.redacted,
        key_hash: k.keyHash,
        scopes: JSON.stringify(k.scopes),
        rate_limit_burst: k.rateLimitBurst,
        rate_limit_per_minute: k.rateLimitPerMinute,
        created_by: k.createdBy,
        last_used_at: null,
        revoked_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Authentication entry point: by hash of the presented key. */
  /** The key by hash, with its creator's current role and status (null: no creator row). */
  async byHash(
    keyHash: string,
  ): Promise<(ApiKeyRow & { creator_role: string | null; creator_status: string | null }) | undefined> {
    return this.db
      .selectFrom('api_keys')
      .leftJoin('users', (j) =>
        j.onRef('users.id', '=', 'api_keys.created_by').onRef('users.org_id', '=', 'api_keys.org_id'),
      )
      .selectAll('api_keys')
      .select(['users.role as creator_role', 'users.status as creator_status'])
      .where('api_keys.key_hash', '=', keyHash)
      .executeTakeFirst();
  }

  async get(orgId: string, id: string): Promise<ApiKeyRow | undefined> {
    return this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async list(orgId: string, environment?: string): Promise<ApiKeyRow[]> {
    let q = this.db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId);
    if (environment) q = q.where('environment', '=', environment);
    return q.orderBy('created_at', 'desc').limit(1000).execute();
  }

  async revoke(orgId: string, id: string, now: Date): Promise<ApiKeyRow | undefined> {
    return this.db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
  }

  async touch(orgId: string, id: string, now: Date): Promise<void> {
    await this.db
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .execute();
  }
}

export class ApproverKeyRepository {
  constructor(private readonly db: Db) {}

  async insert(k: {
    id: string;
    orgId: string;
    userId: string;
    publicKey: string;
    label: string;
  }): Promise<ApproverKeyRow> {
    return this.db
      .insertInto('approver_keys')
      .values({
        id: k.id,
        org_id: k.orgId,
        user_id: k.userId,
        public_key: k.publicKey,
        label: k.label,
        status: 'active',
        revoked_at: null,
        revoked_by: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async get(orgId: string, id: string): Promise<ApproverKeyRow | undefined> {
    return this.db
      .selectFrom('approver_keys')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async list(orgId: string, userId?: string): Promise<ApproverKeyRow[]> {
    let q = this.db.selectFrom('approver_keys').selectAll().where('org_id', '=', orgId);
    if (userId) q = q.where('user_id', '=', userId);
    return q.orderBy('created_at', 'desc').limit(1000).execute();
  }

  async revoke(orgId: string, id: string, by: string, now: Date): Promise<ApproverKeyRow | undefined> {
    return this.db
      .updateTable('approver_keys')
      .set({ status: 'revoked', revoked_at: now, revoked_by: by })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('status', '=', 'active')
      .returningAll()
      .executeTakeFirst();
  }
}

export class SigningKeyRepository {
  constructor(private readonly db: Db) {}

  async insert(k: { kid: string; publicJwk: Record<string, unknown>; privateEnc: string }): Promise<void> {
    await this.db
      .insertInto('jwt_signing_keys')
      .values({
        kid: k.kid,
        alg: 'RS256',
        public_jwk: JSON.stringify(k.publicJwk),
        private_enc: k.privateEnc,
        status: 'active',
        retire_at: null,
      })
      .execute();
  }

  /** Active and still-overlapping keys, newest first. */
  async usable(now: Date): Promise<SigningKeyRow[]> {
    return this.db
      .selectFrom('jwt_signing_keys')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb('status', '=', 'active'),
          eb.and([eb('status', '=', 'retiring'), eb('retire_at', '>', now)]),
        ]),
      )
      .orderBy('created_at', 'desc')
      .execute();
  }

  async retireActive(retireAt: Date): Promise<number> {
    const r = await this.db
      .updateTable('jwt_signing_keys')
      .set({ status: 'retiring', retire_at: retireAt })
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async markRetired(now: Date): Promise<number> {
    const r = await this.db
      .updateTable('jwt_signing_keys')
      .set({ status: 'retired' })
      .where('status', '=', 'retiring')
      .where('retire_at', '<=', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
}

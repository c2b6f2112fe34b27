// Access tokens: RS256 JWTs with a 15-minute life, `iss`/`aud`/`typ` checked and the algorithm
// pinned. Signing keys live in the database (private half sealed under the identity key), so every
// API replica signs and verifies with the same set; `rotate()` makes a new key the signer while the
// old one keeps verifying for the overlap period, and JWKS publishes both.
//
// Verification never follows a key reference from the token: `jku`, `x5u`, `jwk` and `x5c` headers
// are refused, `kid` must be a plain identifier and is only looked up in our own key table.
import { randomUUID } from 'node:crypto';
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTHeaderParameters,
  jwtVerify,
  SignJWT,
} from 'jose';
import { type Kysely, sql } from 'kysely';
import type { AuditLog } from '../audit/log.ts';
import { AuthError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { SigningKeyRepository } from '../store/repositories/identity.ts';
import type { Database } from '../store/schema.ts';
import { seal, unseal } from './crypto.ts';
import { isRole, type Role } from './rbac.ts';

export type Environment = 'sandbox' | 'production';

export interface AccessClaims {
  sub: string;
  org: string;
  role: Role;
  env: Environment;
  /** Refresh-token family (the session); logout revokes it. */
  sid: string;
  /** Second factor done (or not required for the role). False: only TOTP enrolment is allowed. */
  mfa: boolean;
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  overlapSeconds: number;
}

interface LoadedKey {
  kid: string;
  publicJwk: JWK;
  verifyKey: CryptoKey;
  signKey: CryptoKey | undefined;
  active: boolean;
  /** After this instant the key verifies nothing (end of the rotation overlap). */
  retireAt: Date | null;
}

const KID = /^[A-Za-z0-9_-]{8,64}$/;
const RELOAD_MIN_MS = 5000;
const RELOAD_EVERY_MS = 60_000;
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256'] as const;

export class TokenService {
  private keys = new Map<string, LoadedKey>();
  private signer: LoadedKey | undefined;
  private lastReload = 0;
  private reloading: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly kek: Uint8Array,
    readonly settings: TokenSettings,
    private readonly logger?: Logger,
  ) {}

  /** Loads the keys, creating the first one if there is none; reloads every minute after. */
  async start(): Promise<void> {
    await this.reload();
    if (!this.signer) {
      await this.db.transaction().execute(async (trx) => {
        // Another replica may be doing the same: serialise on an advisory lock, re-check inside.
        await sql`select pg_advisory_xact_lock(1668441602)`.execute(trx);
        const usable = await new SigningKeyRepository(trx).usable(new Date());
        if (!usable.some((k) => k.status === 'active')) await this.createKey(trx);
      });
      await this.reload(true);
    }
    this.timer ??= setInterval(() => void this.reload(true).catch(() => {}), RELOAD_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Makes a new signing key; the previous one verifies until the overlap ends. Audited. */
  async rotate(
    audit: AuditLog,
    actor: { type: 'service' | 'user'; id: string | null },
  ): Promise<{ kid: string; retiring: number }> {
    const now = new Date();
    const out = await this.db.transaction().execute(async (trx) => {
      const repo = new SigningKeyRepository(trx);
      await repo.markRetired(now);
      const retiring = await repo.retireActive(new Date(now.getTime() + this.settings.overlapSeconds * 1000));
      const kid = await this.createKey(trx);
      await audit.append(trx, {
        orgId: null,
        actor,
        action: 'auth.signing_key.rotate',
        target: { type: 'jwt_signing_key', id: kid },
        details: { retiring, overlapSeconds: this.settings.overlapSeconds },
      });
      return { kid, retiring };
    });
    await this.reload(true);
    return out;
  }

  async issue(claims: AccessClaims, now = new Date()): Promise<{ token: string; expiresIn: number }> {
    if (!this.signer?.signKey) await this.reload(true);
    const k = this.signer;
    if (!k?.signKey) throw new AuthError('CUSTOS_INTERNAL', 'no JWT signing key loaded');
    const iat = Math.floor(now.getTime() / 1000);
    const token = await new SignJWT({
      org: claims.org,
      role: claims.role,
      env: claims.env,
      sid: claims.sid,
      mfa: claims.mfa,
    })
      .setProtectedHeader({ alg: 'RS256', kid: k.kid, typ: 'at+jwt' })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setSubject(claims.sub)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.settings.accessTtlSeconds)
      .sign(k.signKey);
    return { token, expiresIn: this.settings.accessTtlSeconds };
  }

  /** Verifies an access token; any problem is the same 401 (no oracle for attackers). */
  async verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, (header) => this.keyFor(header), {
        algorithms: ['RS256'],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        typ: 'at+jwt',
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        clockTolerance: 5,
      });
      const { sub, org, role, env, sid, mfa } = payload as Record<string, unknown>;
      if (
        typeof sub !== 'string' ||
        typeof org !== 'string' ||
        typeof role !== 'string' ||
        !isRole(role) ||
        (env !== 'sandbox' && env !== 'production') ||
        typeof sid !== 'string' ||
        typeof mfa !== 'boolean'
      ) {
        throw new Error('claims');
      }
      return { sub, org, role, env, sid, mfa };
    } catch (e) {
      this.logger?.debug({ reason: (e as { code?: string }).code ?? 'invalid' }, 'access token refused');
      throw new AuthError('CUSTOS_UNAUTHENTICATED', 'invalid or expired access token');
    }
  }

  /** The public keys that verify tokens now (active and overlapping). */
  jwks(): { keys: JWK[] } {
    const now = new Date();
    return {
      keys: [...this.keys.values()].filter((k) => !k.retireAt || k.retireAt > now).map((k) => k.publicJwk),
    };
  }

  private async keyFor(header: JWTHeaderParameters): Promise<CryptoKey> {
    for (const h of FORBIDDEN_HEADERS) {
      if (h in header) throw new Error(`forbidden header ${h}`);
    }
    if (header.alg !== 'RS256') throw new Error('alg');
    const kid = header.kid;
    if (typeof kid !== 'string' || !KID.test(kid)) throw new Error('kid');
    let k = this.keys.get(kid);
    if (!k) {
      await this.reload(false);
      k = this.keys.get(kid);
    }
    if (!k) throw new Error('unknown kid');
    if (k.retireAt && k.retireAt <= new Date()) throw new Error('retired kid');
    return k.verifyKey;
  }

  private async createKey(db: Kysely<Database>): Promise<string> {
    const kid = randomUUID().replaceAll('-', '');
    const { publicKey, privateKey } = await generateKeyPair('RS256', {
      modulusLength: 2048,
      extractable: true,
    });
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    const privateJwk = await exportJWK(privateKey);
    await new SigningKeyRepository(db).insert({
      kid,
      publicJwk,
      privateEnc: seal(this.kek, JSON.stringify(privateJwk), `jwt-signing-key:${kid}`),
    });
    this.logger?.info({ kid }, 'JWT signing key created');
    return kid;
  }

  /** Reloads keys from the database; `force` skips the rate limit on reloads for unknown kids. */
  private async reload(force = true): Promise<void> {
    if (!force && Date.now() - this.lastReload < RELOAD_MIN_MS) return;
    this.reloading ??= (async () => {
      try {
        const rows = await new SigningKeyRepository(this.db).usable(new Date());
        const next = new Map<string, LoadedKey>();
        let signer: LoadedKey | undefined;
        for (const r of rows) {
          const prev = this.keys.get(r.kid);
          const publicJwk = r.public_jwk as JWK;
          const loaded: LoadedKey = prev ?? {
            kid: r.kid,
            publicJwk,
            verifyKey: (await importJWK(publicJwk, 'RS256')) as CryptoKey,
            signKey: undefined,
            active: false,
            retireAt: null,
          };
          loaded.active = r.status === 'active';
          loaded.retireAt = r.status === 'active' ? null : r.retire_at;
          if (loaded.active && !signer) {
            loaded.signKey ??= (await importJWK(
              JSON.parse(unseal(this.kek, r.private_enc, `jwt-signing-key:${r.kid}`)) as JWK,
              'RS256',
            )) as CryptoKey;
            signer = loaded;
          }
          next.set(r.kid, loaded);
        }
        this.keys = next;
        this.signer = signer;
        this.lastReload = Date.now();
      } finally {
        this.reloading = undefined;
      }
    })();
    await this.reloading;
  }
}

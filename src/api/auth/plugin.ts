// The auth hook. Every route under /v1 (and /.well-known) declares in its route config either the
// permission it needs or that it is public — one line:
//
//   r.get('/v1/vaults', { schema, config: { permission: 'vaults:read' } }, async (req) => {
//     const p = principalOf(req);            // org, environment, actor, role/scopes
//     return vaults.list(p.orgId, p.environment);
//   });
//
// A /v1 route without either declaration, or with a permission missing from docs/security/rbac.md,
// stops the server from starting. Per request, in `onRequest` (before the body is read):
// authenticate (JWT or API key) → rate limit (credential, then source IP) → second-factor gate →
// permission check against the matrix. Denials are 401/403/429 and permission denials become
// security events.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, CustosError } from '../../errors.ts';
import type { Principal, RequestContext } from '../../identity/principal.ts';
import { isPermission, type Permission } from '../../identity/rbac.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import { type IdentityService, principalFromClaims } from '../../identity/service.ts';
import type { TokenService } from '../../identity/tokens.ts';
import { RateLimitError, type RateLimiter } from './rate-limit.ts';

/** `authenticated`: any signed-in principal, no particular permission (logout, TOTP enrolment). */
export type RoutePermission = Permission | 'authenticated';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission this route needs (a row of docs/security/rbac.md), or 'authenticated'. */
    permission?: RoutePermission;
    /** No credentials needed (login, refresh, JWKS); still rate limited per source IP. */
    public?: boolean;
    /** Allowed before a TOTP-required role has enrolled (enrolment itself, logout). */
    allowPendingMfa?: boolean;
  }
  interface FastifyRequest {
    /** Set by the auth hook on routes with a permission; null on public routes. */
    principal: Principal | null;
  }
}

export interface AuthDeps {
  identity: IdentityService;
  tokens: TokenService;
  limiter: RateLimiter;
  events: SecurityEvents;
}

const PROTECTED_PREFIXES = ['/v1/', '/.well-known/'];

/** The principal of an authenticated route (throws if the route forgot to declare a permission). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new AuthError('CUSTOS_UNAUTHENTICATED', 'authentication required');
  return req.principal;
}

/** Request id and client IP, for audit entries and security events. */
export function requestContext(req: FastifyRequest): RequestContext {
  return { requestId: req.id, ip: req.ip ?? null };
}

/**
 * The auth plugin; register it before any feature routes (it applies to the whole app: its hooks
 * are not encapsulated).
 */
export function authPlugin(deps: AuthDeps): (app: FastifyInstance) => Promise<void> {
  const plugin = async (app: FastifyInstance) => {
    app.decorateRequest('principal', null);

    app.addHook('onRoute', (route) => {
      const cfg = (route.config ?? {}) as { permission?: string; public?: boolean };
      const url = route.url ?? route.path;
      const guarded = PROTECTED_PREFIXES.some((p) => url.startsWith(p));
      if (cfg.permission !== undefined && cfg.public) {
        throw new CustosError(
          'CUSTOS_CONFIG_INVALID',
          `${route.method} ${url}: both public and a permission`,
        );
      }
      if (
        cfg.permission !== undefined &&
        cfg.permission !== 'authenticated' &&
        !isPermission(cfg.permission)
      ) {
        throw new CustosError(
          'CUSTOS_CONFIG_INVALID',
          `${route.method} ${url}: permission ${cfg.permission} is not in docs/security/rbac.md`,
        );
      }
      if (guarded && cfg.permission === undefined && !cfg.public) {
        throw new CustosError(
          'CUSTOS_CONFIG_INVALID',
          `${route.method} ${url}: declare config.permission (or config.public) for every /v1 route`,
        );
      }
    });

    app.addHook('onRequest', async (req, reply) => {
      const cfg = req.routeOptions.config;
      if (cfg.permission === undefined && !cfg.public) return; // health, docs
      const ctx = requestContext(req);
      const ipSubject = { kind: 'ip' as const, id: req.ip, orgId: null };
      try {
        if (cfg.public) {
          await deps.limiter.take(ipSubject, ctx);
          return;
        }
        let principal: Principal;
        try {
          principal = await authenticate(req, deps);
        } catch (e) {
          await deps.limiter.take(ipSubject, ctx);
          throw e;
        }
        await deps.limiter.take(
          principal.kind === 'api_key'
            ? {
                kind: 'api_key',
                id: principal.apiKeyId!,
                orgId: principal.orgId,
                burst: principal.rateLimit?.burst ?? null,
                perMinute: principal.rateLimit?.perMinute ?? null,
              }
            : { kind: 'user', id: principal.userId!, orgId: principal.orgId },
          ctx,
        );
        await deps.limiter.take({ ...ipSubject, orgId: principal.orgId }, ctx);
        req.principal = principal;
        if (!principal.mfa && !cfg.allowPendingMfa) {
          throw new AuthError(
            'CUSTOS_MFA_ENROLLMENT_REQUIRED',
            'your role needs TOTP: enrol at POST /v1/auth/totp/enroll, then sign in again',
          );
        }
        const need = cfg.permission!;
        if (need !== 'authenticated' && !principal.permissions.has(need)) {
          await deps.events.raise({
            orgId: principal.orgId,
            kind: 'permission_denied',
            severity: 'warning',
            actorType: principal.actor.type,
            actorId: principal.actor.id,
            ip: ctx.ip,
            requestId: ctx.requestId,
            details: { permission: need, method: req.method, route: req.routeOptions.url ?? null },
          });
          throw new AuthError('CUSTOS_FORBIDDEN', `missing permission ${need}`, {
            details: { permission: need },
          });
        }
      } catch (e) {
        if (e instanceof RateLimitError) setRetryAfter(reply, e.retryAfterSeconds);
        if (e instanceof AuthError && e.code === 'CUSTOS_UNAUTHENTICATED') {
          reply.header('www-authenticate', 'Bearer realm="custos"');
        }
        throw e;
      }
    });
  };
  // Not encapsulated: the hooks above must see every route of the app.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}

function setRetryAfter(reply: FastifyReply, seconds: number): void {
  reply.header('retry-after', String(Math.max(1, Math.ceil(seconds))));
}

async function authenticate(req: FastifyRequest, deps: AuthDeps): Promise<Principal> {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || h.length === 0) {
    throw new AuthError(
      'CUSTOS_UNAUTHENTICATED',
      'authentication required: Authorization: Bearer <token or API key>',
    );
  }
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{16,4096})$/.exec(h);
  if (!m) throw new AuthError('CUSTOS_UNAUTHENTICATED', 'malformed Authorization header');
  const credential = m[1]!;
  if (credential.startsWith('ck_')) {
    const p = await deps.identity.authenticateApiKey(credential);
    if (!p) throw new AuthError('CUSTOS_UNAUTHENTICATED', 'invalid or revoked API key');
    return p;
  }
  const principal = principalFromClaims(await deps.tokens.verify(credential));
  await deps.identity.assertSessionLive(principal);
  return principal;
}

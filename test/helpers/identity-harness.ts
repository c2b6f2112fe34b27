// Test harness for identity, RBAC, rate limits and audit: an app with the security layer on a
// given database and shared state, fresh random secrets, cheap Argon2 and (unless asked) high rate
// limits; plus organisations with one user per role and tokens for them.
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.ts';
import { rateLimiterFrom, securityRoutes } from '../../src/api/auth/index.ts';
import type { RateLimiter } from '../../src/api/auth/rate-limit.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import type { Principal } from '../../src/identity/principal.ts';
import { permissionsOf, ROLES, type Role, rbac } from '../../src/identity/rbac.ts';
import type { SecurityKeys } from '../../src/identity/secrets.ts';
import { createSecurityServices, type SecurityServices } from '../../src/identity/services.ts';
import type { Logger } from '../../src/log/logger.ts';
import { createSharedState } from '../../src/state/index.ts';
import type { SharedState } from '../../src/state/types.ts';
import type { DatabaseHandle } from '../../src/store/database.ts';
import { captureLogger } from './log-capture.ts';

export function testKeys(): SecurityKeys {
  return {
    identityKek: randomBytes(32),
    auditHmacKey: randomBytes(32),
    auditCheckpointKey: randomBytes(32),
    generated: [],
  };
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      CUSTOS_ENV: 'test',
      CUSTOS_ARGON2_MEMORY_KIB: '1024',
      CUSTOS_ARGON2_TIME_COST: '1',
      CUSTOS_RATE_LIMIT_BURST: '100000',
      CUSTOS_RATE_LIMIT_PER_MINUTE: '1000000',
      ...env,
    },
    cwd: '/nonexistent',
  });
}

export interface SecurityApp {
  app: FastifyInstance;
  services: SecurityServices;
  limiter: RateLimiter;
  config: Config;
  state: SharedState;
  logs: () => string;
  /** Every route registered, with its config (permission / public). */
  routes: RecordedRoute[];
  close(): Promise<void>;
}

export interface RecordedRoute {
  method: string;
  url: string;
  permission: string | undefined;
  public: boolean;
  /** 'security': the identity/audit routes every app has; 'extra': routes the caller added. */
  source: 'security' | 'extra';
}

export async function startSecurityApp(opts: {
  db: DatabaseHandle;
  env?: Record<string, string>;
  keys?: SecurityKeys;
  state?: SharedState;
  logger?: { logger: Logger; text(): string };
  routes?: ((app: FastifyInstance) => Promise<void>)[];
}): Promise<SecurityApp> {
  const config = testConfig(opts.env);
  const log = opts.logger ?? captureLogger('info');
  const state = opts.state ?? (await createSharedState({ keyPrefix: `t${randomUUID()}:` }));
  const services = await createSecurityServices(config, opts.db.db, log.logger, {
    keys: opts.keys ?? testKeys(),
  });
  const limiter = rateLimiterFrom(config, state, services);
  const routes: RecordedRoute[] = [];
  // Plugins load one after another, so the source of a route is the plugin loading when it appears.
  let source: RecordedRoute['source'] = 'security';
  const extra = (opts.routes ?? []).map((plugin) => async (a: FastifyInstance) => {
    source = 'extra';
    await plugin(a);
  });
  const recorder = async (a: FastifyInstance) => {
    a.addHook('onRoute', (r) => {
      const cfg = (r.config ?? {}) as { permission?: string; public?: boolean };
      for (const m of [r.method].flat()) {
        if (m === 'HEAD') continue;
        routes.push({
          method: m,
          url: r.url ?? r.path,
          permission: cfg.permission,
          public: cfg.public === true,
          source,
        });
      }
    });
  };
  (recorder as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  const app = await buildApp({
    logger: log.logger,
    version: 'test',
    readiness: [],
    routes: [recorder, ...securityRoutes({ db: opts.db.db, services, limiter }), ...extra],
  });
  await app.ready();
  return {
    app,
    services,
    limiter,
    config,
    state,
    logs: log.text,
    routes,
    async close() {
      services.stop();
      await app.close();
      if (!opts.state) await state.close();
    },
  };
}

/** The principal a signed-in user of `role` has (for calling services directly in fixtures). */
export function userPrincipal(orgId: string, userId: string, role: Role): Principal {
  return {
    kind: 'user',
    orgId,
    environment: 'production',
    userId,
    role,
    apiKeyId: null,
    sessionId: null,
    permissions: permissionsOf(role),
    mfa: true,
    rateLimit: null,
    actor: { type: 'user', id: userId },
  };
}

/** An API key of the org's owner with every scope an API key may be granted. */
export async function fullApiKey(
  s: SecurityServices,
  org: TestOrg,
  environment: 'sandbox' | 'production' = 'production',
): Promise<string> {
  const owner = userPrincipal(org.orgId, org.users.owner.id, 'owner');
  const k = await s.identity.createApiKey(
    owner,
    { requestId: null, ip: null },
    { name: 'all-scopes', environment, scopes: [...rbac().apiKeyGrantable] },
  );
  return k.key;
}

export interface TestOrg {
  orgId: string;
  ownerEmail: string;
  ownerPassword: string;
  ownerTotpSecret: string;
  users: Record<Role, { id: string; email: string; token: string }>;
}

/** An organisation with one user per role (passwords known: `password-<role>-123`) and tokens. */
export async function makeOrg(s: SecurityServices, name: string): Promise<TestOrg> {
  const email = `owner-${randomUUID().slice(0, 8)}@${name}.test`;
  const b = await s.identity.bootstrap({ orgName: `${name}-${randomUUID().slice(0, 6)}`, email });
  const users = {} as TestOrg['users'];
  const ownerPrincipal = userPrincipal(b.org.id, b.user.id, 'owner');
  for (const role of ROLES) {
    let id = b.user.id;
    let uemail = email;
    if (role !== 'owner') {
      uemail = `${role}-${randomUUID().slice(0, 8)}@${name}.test`;
      const u = await s.identity.createUser(
        ownerPrincipal,
        { requestId: null, ip: null },
        {
          email: uemail,
          role,
          password: `password-${role}-123`,
        },
      );
      id = u.user.id;
    }
    const { token } = await s.tokens.issue({
      sub: id,
      org: b.org.id,
      role,
      env: 'production',
      sid: randomUUID(),
      mfa: true,
    });
    users[role] = { id, email: uemail, token };
  }
  return {
    orgId: b.org.id,
    ownerEmail: email,
    ownerPassword: b.password,
    ownerTotpSecret: b.totpSecret,
    users,
  };
}

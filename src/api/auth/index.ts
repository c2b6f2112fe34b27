// The security layer of the API in one call: the auth hook (must come first) and the identity,
// audit and security-event routes. Feature routes registered after it declare their permission in
// their route config (see ./plugin.ts).
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Config } from '../../config.ts';
import type { SecurityServices } from '../../identity/services.ts';
import type { SharedState } from '../../state/types.ts';
import type { Database } from '../../store/schema.ts';
import { apiKeyRoutes } from '../routes/api-keys.ts';
import { approverKeyRoutes } from '../routes/approver-keys.ts';
import { auditRoutes } from '../routes/audit.ts';
import { authRoutes } from '../routes/auth.ts';
import { orgRoutes } from '../routes/orgs.ts';
import { securityEventRoutes } from '../routes/security-events.ts';
import { userRoutes } from '../routes/users.ts';
import { authPlugin } from './plugin.ts';
import { RateLimiter } from './rate-limit.ts';

export { principalOf, requestContext } from './plugin.ts';

export function rateLimiterFrom(config: Config, state: SharedState, services: SecurityServices): RateLimiter {
  return new RateLimiter(
    state,
    {
      burst: config.rateLimitBurst,
      perMinute: config.rateLimitPerMinute,
      abuseViolations: config.rateLimitAbuseViolations,
      abuseWindowSeconds: config.rateLimitAbuseWindowSeconds,
      blockSeconds: config.rateLimitBlockSeconds,
    },
    services.events,
  );
}

/** [auth hook, identity routes…] — put these first in buildApp's `routes`. */
export function securityRoutes(deps: {
  db: Kysely<Database>;
  services: SecurityServices;
  limiter: RateLimiter;
}): ((app: FastifyInstance) => Promise<void>)[] {
  const { identity, tokens, events, audit } = deps.services;
  return [
    authPlugin({ identity, tokens, limiter: deps.limiter, events }),
    authRoutes({ identity, tokens }),
    orgRoutes({ identity }),
    userRoutes({ identity }),
    apiKeyRoutes({ identity }),
    approverKeyRoutes({ identity }),
    auditRoutes({ db: deps.db, audit }),
    securityEventRoutes({ db: deps.db }),
  ];
}

// Who is calling: the result of authentication that every later step (rate limits, RBAC, tenancy,
// audit attribution) works from. Routes get it as `req.principal` (see src/api/auth/).
import type { AuditActor } from '../audit/log.ts';
import type { Permission, Role } from './rbac.ts';
import type { Environment } from './tokens.ts';

export interface Principal {
  kind: 'user' | 'api_key';
  orgId: string;
  /** Sandbox or production: environment-scoped data is filtered by it. */
  environment: Environment;
  /** The user (for an API key: the user who created it, for separation of duties). */
  userId: string | null;
  /** Set for users. */
  role: Role | null;
  apiKeyId: string | null;
  /** Refresh-token family of a user session. */
  sessionId: string | null;
  permissions: ReadonlySet<Permission>;
  /** False: a role that needs TOTP has not enrolled yet; only enrolment is allowed. */
  mfa: boolean;
  /** Per-key rate limit override. */
  rateLimit: { burst: number | null; perMinute: number | null } | null;
  actor: AuditActor;
}

/** Request facts that go into audit entries and security events. */
export interface RequestContext {
  requestId: string | null;
  ip: string | null;
}

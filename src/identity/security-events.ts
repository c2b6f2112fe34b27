// Security events: stored for `GET /v1/security-events` and written to the log stream
// (`stream: "security"`) so a SIEM can follow them live. Raising one never fails the request that
// raised it: if storing fails, the log line still says what happened.
import type { Kysely } from 'kysely';
import type { Logger } from '../log/logger.ts';
import { type NewSecurityEvent, SecurityEventRepository } from '../store/repositories/security-events.ts';
import type { Database } from '../store/schema.ts';

export type SecurityEventKind =
  | 'login_failed'
  | 'account_locked'
  | 'login_while_locked'
  | 'refresh_token_reused'
  | 'rate_limit_blocked'
  | 'permission_denied'
  | 'invalid_token'
  | 'api_key_revoked_used'
  | (string & {});

export type SecurityEventInput = Omit<NewSecurityEvent, 'kind'> & { kind: SecurityEventKind };

export class SecurityEvents {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly logger: Logger,
  ) {}

  async raise(e: SecurityEventInput): Promise<void> {
    const level = e.severity === 'critical' ? 'error' : e.severity === 'warning' ? 'warn' : 'info';
    this.logger[level](
      {
        stream: 'security',
        event: e.kind,
        severity: e.severity,
        orgId: e.orgId,
        actor: e.actorType ? `${e.actorType}:${e.actorId ?? ''}` : null,
        ip: e.ip,
        reqId: e.requestId,
        details: e.details,
      },
      `security event: ${e.kind}`,
    );
    try {
      await new SecurityEventRepository(this.db).insert(e);
    } catch (err) {
      this.logger.error({ err, event: e.kind }, 'security event could not be stored');
    }
  }
}

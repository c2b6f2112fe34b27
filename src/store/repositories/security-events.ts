// Security events (failed logins, lockouts, rate-limit blocks, permission denials, node aborts,
// limit breaches): a plain table for `GET /v1/security-events`, scoped by organisation. Events with
// no organisation (an unknown email, an anonymous IP) are visible to operators in the log stream.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, SecurityEventTable } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;
export type SecurityEventRow = Selectable<SecurityEventTable>;

export interface NewSecurityEvent {
  orgId: string | null;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  actorType: string | null;
  actorId: string | null;
  ip: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}

export class SecurityEventRepository {
  constructor(private readonly db: Db) {}

  async insert(e: NewSecurityEvent): Promise<SecurityEventRow> {
    return this.db
      .insertInto('security_events')
      .values({
        org_id: e.orgId,
        kind: e.kind,
        severity: e.severity,
        actor_type: e.actorType,
        actor_id: e.actorId,
        ip: e.ip,
        request_id: e.requestId,
        details: JSON.stringify(e.details),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async list(
    orgId: string,
    q: { kind?: string | undefined; since?: Date | undefined; afterId?: bigint | undefined; limit: number },
  ): Promise<SecurityEventRow[]> {
    let b = this.db.selectFrom('security_events').selectAll().where('org_id', '=', orgId);
    if (q.kind) b = b.where('kind', '=', q.kind);
    if (q.since) b = b.where('occurred_at', '>=', q.since);
    if (q.afterId !== undefined) b = b.where('id', '>', q.afterId);
    return b.orderBy('id', 'asc').limit(q.limit).execute();
  }
}

// Audit log and checkpoint rows. Appends only: the table has no update or delete path here, and
// the database refuses both (trigger in migration 2026-11-22-0002). `lockHead` serialises writers
// for the rest of the caller's transaction so sequence numbers never fork.
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { AuditEntry } from '../../audit/chain.ts';
import type { AuditCheckpointTable, AuditLogTable, Database } from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Arbitrary constant: the advisory lock id of the audit chain head. */
const AUDIT_HEAD_LOCK = 0x6375_0a01;

export interface AuditCheckpoint {
  seq: bigint;
  hash: string;
  createdAt: Date;
  publicKey: string;
  signature: string;
}

export interface AuditQuery {
  orgId: string;
  afterSeq?: bigint | undefined;
  fromTime?: Date | undefined;
  toTime?: Date | undefined;
  actorId?: string | undefined;
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  outcome?: string | undefined;
  requestId?: string | undefined;
  /** details->>key must equal one of these values (plain or HMAC form). */
  detail?: { key: string; values: string[] } | undefined;
  limit: number;
}

type Row = Selectable<AuditLogTable>;

export function toEntry(r: Row): AuditEntry {
  return {
    seq: BigInt(r.seq),
    occurredAt: r.occurred_at,
    orgId: r.org_id,
    actorType: r.actor_type as AuditEntry['actorType'],
    actorId: r.actor_id,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    outcome: r.outcome as AuditEntry['outcome'],
    requestId: r.request_id,
    details: r.details as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export class AuditRepository {
  constructor(private readonly db: Db) {}

  /** Takes the chain-head lock until the end of the current transaction. */
  async lockHead(): Promise<void> {
    await sql`select pg_advisory_xact_lock(${AUDIT_HEAD_LOCK})`.execute(this.db);
  }

  async head(): Promise<{ seq: bigint; hash: string } | undefined> {
    const r = await this.db
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? { seq: BigInt(r.seq), hash: r.hash } : undefined;
  }

  async insert(e: AuditEntry): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({
        seq: e.seq,
        occurred_at: e.occurredAt,
        org_id: e.orgId,
        actor_type: e.actorType,
        actor_id: e.actorId,
        action: e.action,
        target_type: e.targetType,
        target_id: e.targetId,
        outcome: e.outcome,
        request_id: e.requestId,
        details: JSON.stringify(e.details),
        prev_hash: e.prevHash,
        hash: e.hash,
      })
      .execute();
  }

  /**
   * Inserts `entries` only if the chain head is still `expected` (seq and hash) — one statement
   * instead of a head read and an insert. The caller holds the head lock, so the check, made by
   * this statement after the lock was granted, sees every committed entry. False: nothing written.
   */
  async insertIfHead(entries: AuditEntry[], expected: { seq: bigint; hash: string }): Promise<boolean> {
    const rows = sql.join(
      entries.map(
        (e) =>
          sql`(${e.seq}::int8, ${e.occurredAt}::timestamptz, ${e.orgId}::text, ${e.actorType}::text,
            ${e.actorId}::text, ${e.action}::text, ${e.targetType}::text, ${e.targetId}::text,
            ${e.outcome}::text, ${e.requestId}::text, ${JSON.stringify(e.details)}::jsonb,
            ${e.prevHash}::text, ${e.hash}::text)`,
      ),
    );
    const r = await sql`with h as (select seq, hash from audit_log order by seq desc limit 1)
      insert into audit_log (seq, occurred_at, org_id, actor_type, actor_id, action, target_type,
        target_id, outcome, request_id, details, prev_hash, hash)
      select v.* from (values ${rows}) as v(seq, occurred_at, org_id, actor_type, actor_id, action,
        target_type, target_id, outcome, request_id, details, prev_hash, hash)
      where exists (select 1 from h where h.seq = ${expected.seq}::int8 and h.hash = ${expected.hash})`.execute(
      this.db,
    );
    return (r.numAffectedRows ?? 0n) === BigInt(entries.length);
  }

  /** Bulk insert (imports, tests); same rows as insert(). */
  async insertMany(entries: AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db
      .insertInto('audit_log')
      .values(
        entries.map((e) => ({
          seq: e.seq,
          occurred_at: e.occurredAt,
          org_id: e.orgId,
          actor_type: e.actorType,
          actor_id: e.actorId,
          action: e.action,
          target_type: e.targetType,
          target_id: e.targetId,
          outcome: e.outcome,
          request_id: e.requestId,
          details: JSON.stringify(e.details),
          prev_hash: e.prevHash,
          hash: e.hash,
        })),
      )
      .execute();
  }

  /** Whether any entry records `action` on the target with this id. */
  async recorded(action: string, targetId: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('audit_log')
      .select('seq')
      .where('action', '=', action)
      .where('target_id', '=', targetId)
      .limit(1)
      .executeTakeFirst();
    return r !== undefined;
  }

  async get(seq: bigint): Promise<AuditEntry | undefined> {
    const r = await this.db.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirst();
    return r ? toEntry(r) : undefined;
  }

  /** Entries with seq >= fromSeq in order, at most `limit`. */
  async range(fromSeq: bigint, limit: number): Promise<AuditEntry[]> {
    const rows = await this.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>=', fromSeq)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map((r) => toEntry(r));
  }

  /** One organisation's entries, filtered, in sequence order. */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    let b = this.db.selectFrom('audit_log').selectAll().where('org_id', '=', q.orgId);
    if (q.afterSeq !== undefined) b = b.where('seq', '>', q.afterSeq);
    if (q.fromTime) b = b.where('occurred_at', '>=', q.fromTime);
    if (q.toTime) b = b.where('occurred_at', '<', q.toTime);
    if (q.actorId) b = b.where('actor_id', '=', q.actorId);
    if (q.action) b = b.where('action', '=', q.action);
    if (q.targetType) b = b.where('target_type', '=', q.targetType);
    if (q.targetId) b = b.where('target_id', '=', q.targetId);
    if (q.outcome) b = b.where('outcome', '=', q.outcome);
    if (q.requestId) b = b.where('request_id', '=', q.requestId);
    if (q.detail) {
      const { key, values } = q.detail;
      b = b.where(sql<string>`details->>${key}`, 'in', values);
    }
    const rows = await b.orderBy('seq', 'asc').limit(q.limit).execute();
    return rows.map((r) => toEntry(r));
  }

  async insertCheckpoint(c: AuditCheckpoint): Promise<void> {
    await this.db
      .insertInto('audit_checkpoints')
      .values({
        seq: c.seq,
        hash: c.hash,
        created_at: c.createdAt,
        public_key: c.publicKey,
        signature: c.signature,
      })
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
  }

  async lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    const r = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? toCheckpoint(r) : undefined;
  }

  async checkpoints(fromSeq: bigint): Promise<AuditCheckpoint[]> {
    const rows = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('seq', '>=', fromSeq)
      .orderBy('seq', 'asc')
      .execute();
    return rows.map(toCheckpoint);
  }
}

function toCheckpoint(r: Selectable<AuditCheckpointTable>): AuditCheckpoint {
  return {
    seq: BigInt(r.seq),
    hash: r.hash,
    createdAt: r.created_at,
    publicKey: r.public_key,
    signature: r.signature,
  };
}

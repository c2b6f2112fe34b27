// Custody events: what happened to an organisation's withdrawals and deposits, in commit order, for
// webhooks and integrations. They are not a second record: each event is an audit-log entry (written
// in the same database transaction as the change, so an event exists exactly when its change
// committed), seen through an allowlist — only the event types below and only the listed detail
// fields, never actors' ids, request ids or anything else an audit entry may carry. The audit `seq`
// orders them (appends are serialised under the audit head lock until commit, so a later seq never
// commits before an earlier one) and is the cursor of GET /v1/events and of the event relay.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/schema.ts';
import { TX_STATES } from './state-machine.ts';

export const EVENT_TYPES = [
  'transaction.created',
  ...TX_STATES.filter((s) => s !== 'created').map((s) => `transaction.${s}` as const),
  'transaction.approval',
  'transaction.rejection',
  'deposit.detected',
  'deposit.credited',
  'deposit.reorged',
  'deposit.orphaned',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Audit action → event type (the creation is audited as `transaction.create`). */
const ACTION_TO_TYPE = new Map<string, EventType>(
  EVENT_TYPES.map((t) => [t === 'transaction.created' ? 'transaction.create' : t, t]),
);
const TYPE_TO_ACTION = new Map<EventType, string>([...ACTION_TO_TYPE].map(([a, t]) => [t, a]));

/** The detail fields an event carries (everything else in the audit entry stays in the audit log). */
const DATA_FIELDS = new Set([
  // transactions
  'from',
  'to',
  'intentHash',
  'walletId',
  'network',
  'asset',
  'amount',
  'destination',
  'source',
  'maxFee',
  'outcome',
  'requiredApprovals',
  'chainTxId',
  'confirmations',
  'feePaid',
  'approvalId',
  'reason',
  // deposits
  'txId',
  'address',
  'blockNumber',
  'forkBlockNumber',
  'was',
]);

export interface CustodyEvent {
  /** `evt_<seq>`: stable, unique, and the de-duplication id on the bus. */
  id: string;
  /** Audit sequence number (decimal string): the cursor (`after`) for the next page. */
  seq: string;
  type: EventType;
  orgId: string;
  /** The environment of the wallet it happened in: API keys see only their own. */
  environment: 'sandbox' | 'production';
  occurredAt: string;
  /** What it is about: a transaction or a deposit. */
  resource: { type: 'transaction' | 'deposit'; id: string };
  /** Who caused it, by kind only (user, api_key, service, worker). */
  actorType: string;
  data: Record<string, unknown>;
}

interface AuditRow {
  seq: bigint | string | number;
  occurred_at: Date;
  org_id: string | null;
  actor_type: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, unknown> | string;
  environment: string | null;
}

/** The event an audit row stands for, or null when it is not one. */
export function eventOfAuditRow(r: AuditRow): CustodyEvent | null {
  const type = ACTION_TO_TYPE.get(r.action);
  if (!type || !r.org_id || !r.target_id) return null;
  if (r.target_type !== 'transaction' && r.target_type !== 'deposit') return null;
  if (r.environment !== 'sandbox' && r.environment !== 'production') return null;
  const details =
    typeof r.details === 'string' ? (JSON.parse(r.details) as Record<string, unknown>) : r.details;
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details ?? {})) if (DATA_FIELDS.has(k)) data[k] = v;
  const seq = BigInt(r.seq).toString();
  return {
    id: `evt_${seq}`,
    seq,
    type,
    orgId: r.org_id,
    environment: r.environment,
    occurredAt: new Date(r.occurred_at).toISOString(),
    resource: { type: r.target_type, id: r.target_id },
    actorType: r.actor_type,
    data,
  };
}

export interface EventQuery {
  /** Only events with a larger seq (exclusive cursor). */
  after?: bigint;
  limit?: number;
  types?: readonly EventType[];
  /** Only this organisation's (the API); undefined = every organisation's (the relay). */
  orgId?: string;
  /** Only events about this resource (a transaction or deposit id). */
  resourceId?: string;
  /** Only this environment's (the API: the caller's). */
  environment?: 'sandbox' | 'production';
}

/** Events in seq order. */
export async function listEvents(db: Kysely<Database>, q: EventQuery = {}): Promise<CustodyEvent[]> {
  const actions = (q.types?.length ? q.types : EVENT_TYPES).map((t) => TYPE_TO_ACTION.get(t)!);
  // The environment is the wallet's: transactions carry it, deposits through their wallet.
  let query = db
    .selectFrom('audit_log as a')
    .leftJoin('transactions as t', (j) =>
      j.onRef('t.id', '=', 'a.target_id').on('a.target_type', '=', 'transaction'),
    )
    .leftJoin('deposits as d', (j) => j.onRef('d.id', '=', 'a.target_id').on('a.target_type', '=', 'deposit'))
    .leftJoin('wallets as w', 'w.id', 'd.wallet_id')
    .select([
      'a.seq',
      'a.occurred_at',
      'a.org_id',
      'a.actor_type',
      'a.action',
      'a.target_type',
      'a.target_id',
      'a.details',
      sql<string | null>`coalesce(t.environment, w.environment)`.as('environment'),
    ])
    .where('a.seq', '>', q.after ?? 0n)
    .where('a.action', 'in', actions)
    .where('a.target_type', 'in', ['transaction', 'deposit'])
    .orderBy('a.seq', 'asc')
    .limit(Math.min(Math.max(q.limit ?? 100, 1), 1000));
  query = q.orgId ? query.where('a.org_id', '=', q.orgId) : query.where('a.org_id', 'is not', null);
  if (q.resourceId) query = query.where('a.target_id', '=', q.resourceId);
  if (q.environment) {
    query = query.where(sql<boolean>`coalesce(t.environment, w.environment) = ${q.environment}`);
  }
  const rows = await query.execute();
  return rows.map(eventOfAuditRow).filter((e): e is CustodyEvent => e !== null);
}

/** The last audit seq (0 for an empty log): where a new relay starts when told to skip history. */
export async function auditHeadSeq(db: Kysely<Database>): Promise<bigint> {
  const r = await db
    .selectFrom('audit_log')
    .select(sql<string>`coalesce(max(seq), 0)`.as('seq'))
    .executeTakeFirstOrThrow();
  return BigInt(r.seq);
}

// The hash chain of the audit log: a canonical encoding of an entry (sorted keys, no whitespace,
// every field present) and SHA-256 over it, domain-separated. `hash(n)` covers `prev_hash(n)` =
// `hash(n-1)`, so editing, removing or reordering any entry breaks every link after it.
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);
const DOMAIN = 'custos/audit-entry/v1\n';

export type AuditOutcome = 'success' | 'failure' | 'denied';
export type ActorType = 'user' | 'api_key' | 'service' | 'anonymous';

/** One audit entry as stored (details already normalised and with sensitive values HMAC'd). */
export interface AuditEntry {
  seq: bigint;
  occurredAt: Date;
  orgId: string | null;
  actorType: ActorType;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: AuditOutcome;
  requestId: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** JSON with object keys sorted at every level; rejects what JSON (and jsonb) cannot hold exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  }
}

/**
 * Makes details safe to store and to hash identically before and after a jsonb round trip:
 * bigint → decimal string, Date → ISO string, NUL characters replaced, undefined dropped.
 */
export function normalizeDetails(details: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(details, (_k, v) => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'string') return v.replaceAll('\u0000', '\uFFFD');
      if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
      return v;
    }),
  ) as Record<string, unknown>;
}

export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  const body = canonicalJson({
    seq: e.seq.toString(),
    occurredAt: e.occurredAt.toISOString(),
    orgId: e.orgId,
    actorType: e.actorType,
    actorId: e.actorId,
    action: e.action,
    targetType: e.targetType,
    targetId: e.targetId,
    outcome: e.outcome,
    requestId: e.requestId,
    details: e.details,
    prevHash: e.prevHash,
  });
  return createHash('sha256').update(DOMAIN).update(body).digest('hex');
}

/** The bytes an audit checkpoint signs. */
export function checkpointMessage(seq: bigint, hash: string, createdAt: Date): Uint8Array {
  return new TextEncoder().encode(
    `custos/audit-checkpoint/v1\n${seq.toString()}\n${hash}\n${createdAt.toISOString()}`,
  );
}

// The MPC layer's security events (rejected envelopes and requests, cheating verdicts, key locks:
// src/mpc/events.ts) as platform security events: stored for `GET /v1/security-events` of the
// organisation whose key it concerns (org null when no key is named, e.g. a forged envelope), and
// written to the `stream: "security"` log. Nodes in other processes log their own observations; what
// reaches the control plane is what its coordinator observes (and, in-process, the nodes' too).
import type { Kysely } from 'kysely';
import type { SecurityEvents } from '../identity/security-events.ts';
import type { SecurityEvents as MpcSecurityEvents, SecurityEvent } from '../mpc/events.ts';
import type { Database } from '../store/schema.ts';

const CRITICAL = new Set(['cheating', 'key-locked', 'bad-signature', 'unauthorized', 'bad-request']);

export function forwardMpcSecurityEvents(
  from: MpcSecurityEvents,
  to: SecurityEvents,
  db: Kysely<Database>,
): () => void {
  const orgs = new Map<string, string | null>();
  const orgOfKey = async (keyId: string | undefined): Promise<string | null> => {
    if (!keyId) return null;
    if (orgs.has(keyId)) return orgs.get(keyId) ?? null;
    try {
      const row = await db
        .selectFrom('vault_keys')
        .select('org_id')
        .where('key_id', '=', keyId)
        .executeTakeFirst();
      if (orgs.size > 10_000) orgs.clear();
      orgs.set(keyId, row?.org_id ?? null);
      return row?.org_id ?? null;
    } catch {
      // The database did not answer: this event goes unattributed (still logged); the next one asks again.
      return null;
    }
  };
  const onEvent = (ev: SecurityEvent) => {
    void orgOfKey(ev.keyId).then((orgId) =>
      to.raise({
        orgId,
        kind: `mpc_${ev.kind.replaceAll('-', '_')}`,
        severity: CRITICAL.has(ev.kind) ? 'critical' : 'warning',
        actorType: 'service',
        actorId: ev.observer,
        ip: null,
        requestId: null,
        details: {
          observer: ev.observer,
          ...(ev.peer !== undefined ? { peer: ev.peer } : {}),
          ...(ev.keyId ? { keyId: ev.keyId } : {}),
          ...(ev.sessionId ? { sessionId: ev.sessionId } : {}),
          ...(ev.protocol ? { protocol: ev.protocol } : {}),
          ...(ev.round !== undefined ? { round: ev.round } : {}),
          detail: ev.detail,
        },
      }),
    );
  };
  from.on('event', onEvent);
  return () => from.off('event', onEvent);
}

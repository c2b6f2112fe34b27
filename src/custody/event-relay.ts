// The event relay: publishes custody events (./events.ts) to the bus stream CUSTODY_EVENTS on
// `custos.events.<orgId>.<environment>.<type>` (custos.events.org_1.production.transaction.completed),
// in audit order,
// for webhook delivery and integrations. At least once, never lost: the relay's position (the seq of
// the last event the stream acknowledged) is stored in `event_cursors` only after the ack, so a crash
// between the two republishes a few events, and the stream drops those by message id (`evt_<seq>`)
// within its duplicate window; consumers de-duplicate by event id beyond it. One relay publishes at a
// time: each pass takes the PostgreSQL lease `event-relay:<name>` (./leases.ts). A bus outage only
// delays events — they wait in the audit log — and the pass is retried at the next interval.
import { type Kysely, sql } from 'kysely';
import type { Bus } from '../bus/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Database } from '../store/schema.ts';
import { auditHeadSeq, type CustodyEvent, listEvents } from './events.ts';
import { leaseHolderId, PgLease } from './leases.ts';

export const EVENTS_STREAM = 'CUSTODY_EVENTS';
export const EVENTS_SUBJECT_PREFIX = 'custos.events';

export const eventSubject = (
  e: Pick<CustodyEvent, 'orgId' | 'environment' | 'type'>,
  prefix = EVENTS_SUBJECT_PREFIX,
) => `${prefix}.${e.orgId}.${e.environment}.${e.type}`;

export interface EventRelayOptions {
  /** Poll interval (ms). */
  intervalMs: number;
  /** Relay name (its cursor and lease); default 'default'. */
  name?: string;
  /** Events per bus round (default 200). */
  batch?: number;
  /** Where a relay without a stored cursor starts: 'beginning' (default) or 'now' (skip history). */
  startAt?: 'beginning' | 'now';
  /** How long the stream keeps events (default 7 days). */
  retentionMs?: number;
  leaseTtlMs?: number;
  holder?: string;
  /** Stream name and subject prefix (defaults CUSTODY_EVENTS and custos.events; tests use their own). */
  stream?: string;
  subjectPrefix?: string;
}

export interface RelayPass {
  published: number;
  /** Of those, how many the stream already had (a republish after a crash; dropped by msgId). */
  duplicates: number;
  /** False when another relay holds the lease. */
  leased: boolean;
}

export class EventRelay {
  readonly lease: PgLease;
  readonly name: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<RelayPass> | undefined;
  #streamReady = false;
  #failing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly opts: EventRelayOptions,
  ) {
    this.name = opts.name ?? 'default';
    if (!/^[a-z0-9_-]{1,64}$/.test(this.name)) throw new TypeError('event relay: bad name');
    this.lease = new PgLease(
      db,
      `event-relay:${this.name}`,
      opts.holder ?? leaseHolderId('event-relay'),
      opts.leaseTtlMs ?? Math.max(30_000, 10 * opts.intervalMs),
    );
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.tick().catch(() => undefined);
    }, this.opts.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    await this.lease.release().catch(() => undefined);
  }

  /** One pass: publishes everything committed so far (concurrent calls share the running pass). */
  tick(): Promise<RelayPass> {
    this.#running ??= this.#pass()
      .then(
        (r) => {
          if (this.#failing) this.log.info({ relay: this.name }, 'event relay publishing again');
          this.#failing = false;
          return r;
        },
        (err) => {
          // One log line per outage, not one per interval.
          if (!this.#failing)
            this.log.error({ err, relay: this.name }, 'event relay pass failed; will retry');
          this.#failing = true;
          throw err;
        },
      )
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /** The seq of the last event published (null before the first pass). */
  async position(): Promise<bigint | null> {
    const r = await this.db
      .selectFrom('event_cursors')
      .select('seq')
      .where('name', '=', this.name)
      .executeTakeFirst();
    return r ? BigInt(r.seq) : null;
  }

  async #pass(): Promise<RelayPass> {
    if (!(await this.lease.acquire())) return { published: 0, duplicates: 0, leased: false };
    const prefix = this.opts.subjectPrefix ?? EVENTS_SUBJECT_PREFIX;
    if (!this.#streamReady) {
      await this.bus.ensureStream({
        name: this.opts.stream ?? EVENTS_STREAM,
        subjects: [`${prefix}.>`],
        duplicateWindowMs: 10 * 60_000,
        maxAgeMs: this.opts.retentionMs ?? 7 * 24 * 3600_000,
      });
      this.#streamReady = true;
    }
    let position = await this.position();
    if (position === null) {
      position = this.opts.startAt === 'now' ? await auditHeadSeq(this.db) : 0n;
      await this.#save(position);
    }
    let published = 0;
    let duplicates = 0;
    for (;;) {
      const events = await listEvents(this.db, { after: position, limit: this.opts.batch ?? 200 });
      if (events.length === 0) break;
      // In order, one at a time: a subscriber sees an organisation's events in commit order.
      for (const e of events) {
        const ack = await this.bus.publishDurable(
          eventSubject(e, prefix),
          new TextEncoder().encode(JSON.stringify(e)),
          { msgId: e.id, headers: { 'Custos-Event-Type': e.type, 'Custos-Org': e.orgId } },
        );
        published++;
        if (ack.duplicate) duplicates++;
        position = BigInt(e.seq);
      }
      await this.#save(position);
      if (!(await this.lease.acquire())) break;
    }
    return { published, duplicates, leased: true };
  }

  async #save(seq: bigint): Promise<void> {
    await this.db
      .insertInto('event_cursors')
      .values({ name: this.name, seq: seq.toString() })
      // Never backwards, even if a relay whose lease ran out mid-pass saves late.
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ seq: sql`greatest(event_cursors.seq, excluded.seq)`, updated_at: sql`now()` }),
      )
      .execute();
  }
}

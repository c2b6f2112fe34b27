// Wires the custody domain for a role: the services over the database, audit log, MPC coordinator
// and chain adapters; a chain watcher per network; the reconciliation job. Plain constructor
// injection — `custos dev`, `custos api` and the tests all start here.
import type { Kysely } from 'kysely';
import type { AuditLog } from '../audit/log.ts';
import type { Bus } from '../bus/types.ts';
import type { ChainAdapter } from '../chains/types.ts';
import type { Logger } from '../log/logger.ts';
import type { MpcCoordinator } from '../mpc/client.ts';
import type { Database } from '../store/schema.ts';
import { EventRelay, type EventRelayOptions } from './event-relay.ts';
import { startReconciliationJob } from './reconcile.ts';
import { CustodyService } from './service.ts';
import { ChainWatcher } from './watcher.ts';
import { WithdrawalService, type WithdrawalSettings } from './withdrawals.ts';

export interface CustodyOptions {
  db: Kysely<Database>;
  audit: AuditLog;
  coordinator: MpcCoordinator;
  chains: ChainAdapter[];
  logger: Logger;
  withdrawals?: Partial<WithdrawalSettings>;
  /** Run chain watchers on a timer (ms); 0/undefined = only when `tick()` is called. */
  watchIntervalMs?: number;
  /**
   * The database runs one transaction at a time (embedded PGlite): watchers then follow in-flight
   * withdrawals one after another, since concurrent ones would only queue (and cost more CPU).
   */
  serialDatabase?: boolean;
  /** Reconciliation job interval (ms); 0/undefined = off. */
  reconcileIntervalMs?: number;
  /** Where custody events are published (stream CUSTODY_EVENTS); undefined = no event relay. */
  bus?: Bus;
  /** Event relay interval (ms); 0/undefined = only when `events.tick()` is called. */
  eventRelayIntervalMs?: number;
  /** Relay name, stream, subject prefix, start position (tests). */
  eventRelay?: Partial<Omit<EventRelayOptions, 'intervalMs'>>;
}

export interface Custody {
  service: CustodyService;
  withdrawals: WithdrawalService;
  watchers: Map<string, ChainWatcher>;
  /** The event relay (when a bus was given). */
  events: EventRelay | undefined;
  /** One watcher pass on every network (tests). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export async function createCustody(o: CustodyOptions): Promise<Custody> {
  const service = new CustodyService({
    db: o.db,
    audit: o.audit,
    coordinator: o.coordinator,
    chains: new Map(o.chains.map((c) => [c.network, c])),
    logger: o.logger.child({ component: 'custody' }),
  });
  await service.start();
  const withdrawals = new WithdrawalService(service, {
    defaultTtlSeconds: 24 * 3600,
    idempotencyTtlMs: 24 * 3600 * 1000,
    ...o.withdrawals,
  });
  const watchers = new Map(
    o.chains.map((c) => [
      c.network,
      new ChainWatcher(service, withdrawals, c, {
        intervalMs: o.watchIntervalMs || 1000,
        ...(o.serialDatabase ? { advanceConcurrency: 1 } : {}),
      }),
    ]),
  );
  if (o.watchIntervalMs) for (const w of watchers.values()) w.start();
  const stopReconcile = o.reconcileIntervalMs
    ? startReconciliationJob(service, o.logger.child({ component: 'reconciliation' }), o.reconcileIntervalMs)
    : () => {};
  const events = o.bus
    ? new EventRelay(o.db, o.bus, o.logger.child({ component: 'event-relay' }), {
        ...o.eventRelay,
        intervalMs: o.eventRelayIntervalMs || 1000,
      })
    : undefined;
  if (events && o.eventRelayIntervalMs) events.start();
  await withdrawals.resume();
  return {
    service,
    withdrawals,
    watchers,
    events,
    async tick() {
      for (const w of watchers.values()) await w.tick();
    },
    async stop() {
      stopReconcile();
      for (const w of watchers.values()) await w.stop();
      await withdrawals.stop();
      // Last: what the watchers and withdrawals committed while stopping is published too.
      if (events) {
        await events.tick().catch(() => undefined);
        await events.stop();
      }
    },
  };
}

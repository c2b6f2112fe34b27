// What every control-plane role opens at start-up: the database (PGlite or PostgreSQL), and — when
// configured — the bus and shared state; plus the readiness checks over them and one close().
import { join } from 'node:path';
import type { ReadinessCheck } from '../api/routes/health.ts';
import { type Bus, createBus, natsOptionsOf, plaintextNatsWarning } from '../bus/index.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import type { MpcCoordinator } from '../mpc/client.ts';
import { createSharedState } from '../state/index.ts';
import type { SharedState } from '../state/types.ts';
import { type DatabaseHandle, openDatabase } from '../store/database.ts';
import type { Closer } from './shutdown.ts';

export interface Runtime {
  config: Config;
  logger: Logger;
  database: DatabaseHandle;
  /** NATS JetStream when CUSTOS_NATS_URL is set, else the in-process bus. */
  bus: Bus;
  /** Redis when CUSTOS_REDIS_URL is set, else in memory. */
  state: SharedState;
  readiness: ReadinessCheck[];
  /** Closers in shutdown order (after the HTTP server). */
  closers: Closer[];
  /** The MPC coordinator (keys, signing) when this role runs one: `custos dev` does. */
  mpc?: MpcCoordinator;
}

export function pgliteDirOf(config: Config): string {
  return join(config.dataDir, 'db');
}

export async function openRuntime(
  config: Config,
  logger: Logger,
  opts: { migrate: boolean /** PostgreSQL schema (tests isolate themselves this way). */; schema?: string },
): Promise<Runtime> {
  const database = await openDatabase({
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: pgliteDirOf(config) }),
    poolSize: config.databasePoolSize,
    ...(opts.schema ? { schema: opts.schema } : {}),
  });
  if (opts.migrate) {
    const r = await database.migrate();
    if (r.applied.length > 0) logger.info({ applied: r.applied }, 'database migrated');
  }
  logger.info({ database: database.location, kind: database.kind }, 'database open');
  const closers: Closer[] = [{ name: 'database', close: () => database.close() }];
  let bus: Bus;
  let state: SharedState;
  try {
    const plaintext = plaintextNatsWarning(config);
    if (plaintext) logger.warn({}, plaintext);
    bus = await createBus({ ...natsOptionsOf(config), name: 'custos-control-plane', logger });
    closers.unshift({ name: 'bus', close: () => bus.close() });
    state = await createSharedState({ redisUrl: config.redisUrl, logger });
    closers.unshift({ name: 'shared state', close: () => state.close() });
  } catch (e) {
    for (const c of closers) await c.close().catch(() => {});
    throw e;
  }
  logger.info({ bus: bus.kind, state: state.kind }, 'bus and shared state open');
  const readiness: ReadinessCheck[] = [
    { name: 'database', check: () => database.ping() },
    {
      name: bus.kind === 'nats' ? 'nats' : 'bus',
      check: async () => void (await bus.ping({ timeoutMs: 1500 })),
    },
    { name: state.kind === 'redis' ? 'redis' : 'shared-state', check: async () => void (await state.ping()) },
  ];
  return { config, logger, database, bus, state, readiness, closers };
}

// The `custos api` role: the HTTP API on the configured database, bus and shared state.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.ts';
import { rateLimiterFrom, securityRoutes } from '../api/auth/index.ts';
import { custodyRoutes } from '../api/routes/custody/routes.ts';
import type { NetworkInput } from '../chains/networks.ts';
import type { Config } from '../config.ts';
import { custodyChains, mergeNetworks } from '../custody/chains.ts';
import { forwardMpcSecurityEvents } from '../custody/mpc-security-events.ts';
import { type Custody, createCustody } from '../custody/runtime.ts';
import { devTestChains } from '../custody/test-chain.ts';
import { createSecurityServices, type SecurityServices } from '../identity/services.ts';
import type { Logger } from '../log/logger.ts';
import { VERSION } from '../version.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { type Closer, onShutdownSignals } from './shutdown.ts';

export interface RunningApi {
  app: FastifyInstance;
  runtime: Runtime;
  /** Identity, tokens, audit log, security events. */
  security: SecurityServices;
  /** The custody domain, when this role has an MPC coordinator (runtime.mpc). */
  custody: Custody | undefined;
  url: string;
  /** Everything this role opened, in closing order (HTTP first, pools last). */
  closers(): Closer[];
  stop(): Promise<void>;
}

export async function startApi(
  config: Config,
  logger: Logger,
  opts: {
    migrate: boolean;
    runtime?: Runtime;
    extraClosers?: Closer[];
    handleSignals?: boolean;
    /** Networks beyond config.networks (custos dev: the local devnet as 'anvil'). */
    networks?: NetworkInput[];
  },
): Promise<RunningApi> {
  const runtime = opts.runtime ?? (await openRuntime(config, logger, { migrate: opts.migrate }));
  const security = await createSecurityServices(config, runtime.database.db, logger, { startTimers: true });
  const limiter = rateLimiterFrom(config, runtime.state, security);
  const custody = runtime.mpc
    ? await createCustody({
        db: runtime.database.db,
        audit: security.audit,
        coordinator: runtime.mpc,
        // The configured networks (EVM/Tron, from the chain registry) and, outside production, the
        // in-memory test chains.
        chains: custodyChains({
          db: runtime.database.db,
          networks: mergeNetworks(config.networks as NetworkInput[], opts.networks),
          testChains: config.env === 'production' ? [] : devTestChains(),
        }),
        logger,
        watchIntervalMs: 1000,
        serialDatabase: runtime.database.pglite !== undefined,
        reconcileIntervalMs: 60_000,
        bus: runtime.bus,
        eventRelayIntervalMs: config.eventRelayIntervalMs,
      })
    : undefined;
  // The MPC layer's security events (cheating verdicts, key locks, rejected envelopes) join the
  // platform's: GET /v1/security-events of the key's organisation, and the security log stream.
  const unforward = runtime.mpc
    ? forwardMpcSecurityEvents(runtime.mpc.events, security.events, runtime.database.db)
    : () => {};
  const app = await buildApp({
    logger,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    version: VERSION,
    readiness: runtime.readiness,
    routes: [
      ...securityRoutes({ db: runtime.database.db, services: security, limiter }),
      ...(custody ? [custodyRoutes(custody, { testChainFaucet: config.env !== 'production' })] : []),
    ],
  });
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const closers = (): Closer[] => [
    { name: 'http', close: () => app.close() },
    { name: 'security timers', close: async () => security.stop() },
    { name: 'mpc security events', close: async () => unforward() },
    ...(custody ? [{ name: 'custody', close: () => custody.stop() }] : []),
    ...(opts.extraClosers ?? []),
    ...runtime.closers,
  ];
  const stop =
    opts.handleSignals === false
      ? async () => {
          for (const c of closers()) await c.close();
        }
      : onShutdownSignals(logger, config.shutdownTimeoutMs, closers);
  return { app, runtime, security, custody, url, closers, stop };
}

// The `custos chain-watcher` role: follows the configured networks (CUSTOS_NETWORKS) for the
// custody domain — scans deposits, credits them at the confirmation depth, handles reorgs, and
// advances withdrawals broadcast → confirming → completed/failed — on the shared database. Run as
// many replicas as you like: each network is worked by whichever replica holds its PostgreSQL lease
// (`chain-watcher:<network>`, src/custody/leases.ts); if it dies, another takes over when the lease
// runs out. It never signs: it has no MPC coordinator. `custos dev` runs the same watchers in-process.

import { AuditLog } from '../audit/log.ts';
import type { NetworkInput } from '../chains/networks.ts';
import type { Config } from '../config.ts';
import { custodyChains } from '../custody/chains.ts';
import { assetId, CustodyService } from '../custody/service.ts';
import { ChainWatcher } from '../custody/watcher.ts';
import { WithdrawalService } from '../custody/withdrawals.ts';
import { CustosError } from '../errors.ts';
import { loadSecurityKeys } from '../identity/secrets.ts';
import type { Logger } from '../log/logger.ts';
import type { MpcCoordinator } from '../mpc/client.ts';
import { AssetRepository } from '../store/repositories/custody.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import { type Closer, onShutdownSignals } from './shutdown.ts';

export interface RunningChainWatcher {
  runtime: Runtime;
  watchers: ChainWatcher[];
  stop(): Promise<void>;
}

/** Stands in for the coordinator: this role must never reach signing. */
const noSigning = new Proxy({} as MpcCoordinator, {
  get() {
    throw new CustosError('CUSTOS_CONFIG_INVALID', 'custos chain-watcher does not sign (no MPC coordinator)');
  },
});

export async function startChainWatcher(
  config: Config,
  logger: Logger,
  opts: { migrate?: boolean; intervalMs?: number; handleSignals?: boolean } = {},
): Promise<RunningChainWatcher> {
  if (config.networks.length === 0) {
    throw new CustosError(
      'CUSTOS_CONFIG_INVALID',
      'custos chain-watcher: no networks configured (set CUSTOS_NETWORKS, see docs/chains.md)',
    );
  }
  // Key files first: a missing one stops the role before it touches the database.
  const keys = loadSecurityKeys(config);
  const runtime = await openRuntime(config, logger, { migrate: opts.migrate ?? false });
  const audit = new AuditLog({
    hmacKey: keys.auditHmacKey,
    checkpointKey: keys.auditCheckpointKey,
    checkpointEvery: config.auditCheckpointEvery,
    logger: logger.child({ component: 'audit' }),
  });
  const db = runtime.database.db;
  const chains = custodyChains({ db, networks: config.networks as NetworkInput[] });
  const service = new CustodyService({
    db,
    audit,
    coordinator: noSigning,
    chains: new Map(chains.map((c) => [c.network, c])),
    logger: logger.child({ component: 'custody' }),
  });
  // The asset registry must know the networks' assets before a deposit is credited.
  const assets = new AssetRepository(db);
  for (const c of chains) {
    for (const a of c.assets) {
      await assets.insertIfMissing({
        id: assetId(a.network, a.symbol),
        network: a.network,
        symbol: a.symbol,
        decimals: a.decimals,
        kind: a.kind,
        contract: a.contract,
        created_by: null,
      });
    }
  }
  const withdrawals = new WithdrawalService(service, {
    defaultTtlSeconds: 24 * 3600,
    idempotencyTtlMs: 24 * 3600 * 1000,
  });
  const intervalMs = opts.intervalMs ?? 2000;
  const watchers = chains.map((c) => new ChainWatcher(service, withdrawals, c, { intervalMs }));
  for (const w of watchers) w.start();
  logger.info({ networks: chains.map((c) => c.network), intervalMs }, 'chain watcher started');
  const closers = (): Closer[] => [
    {
      name: 'chain watchers',
      close: async () => {
        for (const w of watchers) await w.stop();
      },
    },
    ...runtime.closers,
  ];
  const stop =
    opts.handleSignals === false
      ? async () => {
          for (const c of closers()) await c.close();
        }
      : onShutdownSignals(logger, config.shutdownTimeoutMs, closers);
  return { runtime, watchers, stop };
}

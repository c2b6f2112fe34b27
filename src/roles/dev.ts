// `custos dev`: the whole platform in one process on embedded defaults — PGlite under
// <dataDir>/db (also served on a loopback port for psql and other custos commands), the API, and
// everything else as it lands. Secrets are generated on first run into <dataDir>/secrets/.
import { join } from 'node:path';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Bus } from '../bus/index.ts';
import { MemoryBus } from '../bus/memory.ts';
import type { NetworkInput } from '../chains/networks.ts';
import type { Config } from '../config.ts';
import { devnetNetwork, mergeNetworks, nodeChainDecoders } from '../custody/chains.ts';
import { devTestChains } from '../custody/test-chain.ts';
import { CustosError } from '../errors.ts';
import { ensureDemo } from '../identity/bootstrap.ts';
import type { Logger } from '../log/logger.ts';
import { custodyApprovalAuthorizer, FileOwnerTrust } from '../mpc/authorizers/custody-approvals.ts';
import { type InProcessCluster, startInProcessCluster } from '../mpc/local.ts';
import { InstanceRepository } from '../store/repositories/instance.ts';
import { startApi } from './api.ts';
import { ensureDataDir, ensureSecret, readDevInfo, removeDevInfo, writeDevInfo } from './data-dir.ts';
import { type DevnetInfo, startDevnet } from './devnet.ts';
import { openRuntime } from './runtime.ts';
import { type Closer, onShutdownSignals } from './shutdown.ts';

/** A signal arrived while `custos dev` was starting: what was opened is closed again. */
export class StartupCancelled extends Error {
  constructor(readonly signal: string) {
    super(`start-up cancelled by ${signal}`);
  }
}

export interface DevHandle {
  api: string;
  database: string;
  dataDir: string;
  instanceId: string;
  /** <dataDir>/secrets/demo-credentials.json: demo owner login and sandbox API key. */
  demoCredentials: string | null;
  /** The local EVM devnet (anvil), when the binary is installed. */
  evm: DevnetInfo | null;
  stop(): Promise<void>;
}

export async function startDev(
  config: Config,
  logger: Logger,
  opts: { handleSignals?: boolean } = {},
): Promise<DevHandle> {
  if (config.databaseUrl) {
    throw new CustosError(
      'CUSTOS_CONFIG_INVALID',
      'custos dev runs on the embedded database; unset CUSTOS_DATABASE_URL or use custos api',
    );
  }
  const dataDir = ensureDataDir(config.dataDir);
  const running = readDevInfo(dataDir);
  if (running) {
    throw new CustosError(
      'CUSTOS_CONFIG_INVALID',
      `custos dev is already running on ${dataDir} (pid ${running.pid}, ${running.api})`,
    );
  }
  const cfg: Config = { ...config, dataDir };
  const handleSignals = opts.handleSignals ?? true;
  // Until the API's own shutdown handlers are in place, Ctrl-C during start-up stops after the
  // current step and closes what was opened so far (exit code 0); a second Ctrl-C exits at once.
  let cancelled: string | null = null;
  const opened: Closer[] = [];
  const onEarlySignal = (signal: string) => {
    if (cancelled) process.exit(130);
    cancelled = signal;
    logger.info({ signal }, 'stopping after the current start-up step');
  };
  const onInt = () => onEarlySignal('SIGINT');
  const onTerm = () => onEarlySignal('SIGTERM');
  if (handleSignals) {
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  }
  const removeEarly = () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
  const closeOpened = async () => {
    for (const c of opened) await c.close().catch((err) => logger.error({ err, part: c.name }, 'close'));
  };
  const checkpoint = async () => {
    if (!cancelled) return;
    await closeOpened();
    removeEarly();
    throw new StartupCancelled(cancelled);
  };

  let runtime: Awaited<ReturnType<typeof openRuntime>>;
  let api: Awaited<ReturnType<typeof startApi>>;
  let database: string;
  let instanceId: string;
  let devnet: Awaited<ReturnType<typeof startDevnet>>;
  let demo: Awaited<ReturnType<typeof ensureDemo>>;
  try {
    runtime = await openRuntime(cfg, logger, { migrate: true });
    opened.unshift(...runtime.closers);
    await checkpoint();
    const mpc = await startDevMpc(dataDir, logger, runtime.bus);
    opened.unshift({ name: 'mpc nodes', close: () => mpc.stop() });
    runtime.mpc = mpc.coordinator;
    await checkpoint();
    devnet = await startDevnet(dataDir, logger);
    const dn = devnet;
    if (dn) opened.unshift({ name: 'devnet', close: () => dn.anvil.stop() });
    await checkpoint();
    // The devnet mines a block every second (anvil automines only on a transaction), so deposits and
    // withdrawals reach the 'anvil' network's confirmation depth without further traffic.
    if (devnet) await devnet.anvil.rpc('evm_setIntervalMining', [1]);
    const networks = mergeNetworks(
      config.networks as NetworkInput[],
      devnet ? [devnetNetwork(devnet.info)] : [],
    );
    // Custody: every node checks withdrawal evidence itself, trusting only the owner keys its operator
    // listed in <dataDir>/mpc/trusted-owners.json (`custos approve --trust-owner`), with its own decoders.
    for (const node of mpc.nodes.values()) {
      const decoders = nodeChainDecoders(networks, devTestChains({}));
      const trust = new FileOwnerTrust(join(dataDir, 'mpc', 'trusted-owners.json'));
      node.addAuthorizer(custodyApprovalAuthorizer({ trust, chains: decoders }));
    }
    instanceId = (await new InstanceRepository(runtime.database.db).ensure()).instanceId;
    const pglite = runtime.database.pglite!;
    const socket = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port: 0, maxConnections: 16 });
    await socket.start();
    opened.unshift({ name: 'database socket', close: () => socket.stop() });
    database = `postgres://postgres@${socketAddress(socket)}/postgres?sslmode=disable`;
    await checkpoint();

    api = await startApi(cfg, logger, {
      migrate: false,
      runtime,
      // Signals stay with the start-up handler until dev.json is written: a Ctrl-C that lands while
      // the demo organisation is being created must not close the database under it.
      handleSignals: false,
      networks,
      extraClosers: [
        { name: 'dev.json', close: async () => removeDevInfo(dataDir) },
        { name: 'database socket', close: () => socket.stop() },
        { name: 'mpc nodes', close: () => mpc.stop() },
        ...(dn ? [{ name: 'devnet', close: () => dn.anvil.stop() }] : []),
      ],
    });
    // From here the API's closers cover everything opened so far (they include the ones above).
    const running = api;
    opened.splice(0, opened.length, { name: 'api', close: () => running.stop() });
    await checkpoint();
    // Before dev.json appears, so whoever waits for it finds the demo credentials too.
    demo = await ensureDemo(api.security, runtime.database.db, { dataDir, apiUrl: api.url });
    if (demo?.created)
      logger.info({ path: demo.path }, 'demo organisation created; credentials written (mode 0600)');
    await checkpoint();
    writeDevInfo(dataDir, {
      api: api.url,
      database,
      pid: process.pid,
      dataDir,
      instanceId,
      ...(devnet ? { evm: devnet.info } : {}),
      startedAt: new Date().toISOString(),
    });
    await checkpoint();
  } catch (e) {
    if (!(e instanceof StartupCancelled)) {
      await closeOpened();
      removeEarly();
    }
    throw e;
  }
  // Start-up is complete: hand signals to the graceful shutdown in the same synchronous step, so no
  // signal can fall between the two handlers.
  removeEarly();
  const stop = handleSignals ? onShutdownSignals(logger, config.shutdownTimeoutMs, api.closers) : api.stop;
  return {
    api: api.url,
    database,
    dataDir,
    instanceId,
    demoCredentials: demo?.path ?? null,
    evm: devnet?.info ?? null,
    stop,
  };
}

/**
 * Three MPC nodes and the coordinator in this process on the in-process bus, each node with its own
 * data directory under <dataDir>/mpc/node-N and its own secret in <dataDir>/secrets/mpc-node-N.
 */
async function startDevMpc(dataDir: string, logger: Logger, bus: Bus): Promise<InProcessCluster> {
  const secrets: Record<number, string> = {};
  for (const id of [1, 2, 3]) secrets[id] = ensureSecret(dataDir, `mpc-node-${id}`).value;
  const controlPlaneKeyHex = ensureSecret(dataDir, 'mpc-control-plane').value;
  const mpc = await startInProcessCluster({
    dir: join(dataDir, 'mpc'),
    nodes: 3,
    threshold: 2,
    secrets,
    controlPlaneKeyHex,
    ...(bus instanceof MemoryBus ? { hub: bus.hub } : {}),
    logger,
  });
  logger.info({ nodes: 3, threshold: 2, dir: join(dataDir, 'mpc') }, 'mpc: three in-process nodes started');
  return mpc;
}

function socketAddress(s: PGLiteSocketServer): string {
  // The server listens on an ephemeral loopback port; read it back from the net.Server.
  const server = (s as unknown as { server?: { address(): { port: number } | string | null } }).server;
  const a = server?.address();
  if (a && typeof a === 'object') return `127.0.0.1:${a.port}`;
  return s.getServerConn();
}

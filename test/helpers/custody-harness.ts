// Test harness for custody: a database backend, three in-process MPC nodes (each with the custody
// approval authorizer and its own owner trust store), test chains, the security app with the
// custody routes, an organisation with one user per role, and helpers for owner/approver keys.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type { FastifyInstance } from 'fastify';
import { custodyRoutes } from '../../src/api/routes/custody/routes.ts';
import { AuditLog } from '../../src/audit/log.ts';
import { createBus } from '../../src/bus/index.ts';
import type { Bus } from '../../src/bus/types.ts';
import { forwardMpcSecurityEvents } from '../../src/custody/mpc-security-events.ts';
import { type Custody, type CustodyOptions, createCustody } from '../../src/custody/runtime.ts';
import { TestChain } from '../../src/custody/test-chain.ts';
import {
  type ApproverKeyFile,
  generateApproverKey,
  signApproverProof,
  signWithApproverKey,
} from '../../src/identity/approver-keys.ts';
import { custodyApprovalAuthorizer, MemoryOwnerTrust } from '../../src/mpc/authorizers/custody-approvals.ts';
import { statementMessage } from '../../src/mpc/authorizers/custody-evidence.ts';
import { createLocalCluster } from '../../src/mpc/cluster.ts';
import {
  type InProcessCluster,
  nodeDataDir,
  openCoordinator,
  startInProcessCluster,
} from '../../src/mpc/local.ts';
import type { DatabaseHandle } from '../../src/store/database.ts';
import { runCli, spawnCliUntil, waitExit } from './cli.ts';
import { makeOrg, type SecurityApp, startSecurityApp, type TestOrg, testKeys } from './identity-harness.ts';
import { captureLogger } from './log-capture.ts';

export interface CustodyHarness {
  db: DatabaseHandle;
  app: FastifyInstance;
  security: SecurityApp;
  custody: Custody;
  cluster: InProcessCluster;
  chain: TestChain;
  chainEd: TestChain;
  trust: MemoryOwnerTrust;
  org: TestOrg;
  /** The owner's Ed25519 key (registered as an approver key, trusted by the nodes). */
  ownerKey: ApproverKeyFile;
  call(
    method: 'GET' | 'POST',
    url: string,
    token: string,
    body?: unknown,
    headers?: Record<string, string>,
    // biome-ignore lint/suspicious/noExplicitAny: JSON bodies in tests
  ): Promise<{ status: number; body: any }>;
  registerApproverKey(
    user: { id: string; token: string },
    key?: ApproverKeyFile,
  ): Promise<{ id: string; key: ApproverKeyFile }>;
  endorse(approverKeyId: string): Promise<void>;
  signPolicy(vaultId: string): Promise<void>;
  close(): Promise<void>;
}

export async function startCustodyHarness(opts: {
  db: DatabaseHandle;
  poolSize?: number;
  blockTimeMs?: number;
  watchIntervalMs?: number;
  logLevel?: string;
  /** Register POST /v1/dev/test-chain/faucet (as custos dev does). */
  testChainFaucet?: boolean;
  /** A bus for the event relay (custody.events); its timer stays off (call custody.events.tick()). */
  bus?: Bus;
  eventRelay?: CustodyOptions['eventRelay'];
  /**
   * Production shape instead of in-process nodes: three `custos mpc-node start` processes on this
   * NATS, each with the custody authoriser it installs itself and its own trusted-owners file (the
   * owner key is added with `custos approve --trust-owner --trust-file`), and a coordinator over NATS.
   */
  nodeProcesses?: { natsUrl: string };
}): Promise<CustodyHarness> {
  await opts.db.migrate();
  const dir = mkdtempSync(join(tmpdir(), 'custos-custody-'));
  const trust = new MemoryOwnerTrust();
  const chain = new TestChain({
    network: 'test',
    ...(opts.blockTimeMs ? { blockTimeMs: opts.blockTimeMs } : {}),
  });
  const chainEd = new TestChain({ network: 'test-ed25519', scheme: 'eddsa-ed25519' });
  const chains = [chain, chainEd];
  // Each node gets its own decoders (separate adapter instances: nothing shared with the control plane).
  const cluster = opts.nodeProcesses
    ? await startNodeProcesses(dir, opts.nodeProcesses.natsUrl, opts.poolSize ?? 4)
    : await startInProcessCluster({
        dir,
        kdf: { memoryCost: 1024, timeCost: 1 },
        poolSize: opts.poolSize ?? 4,
        nodeOptions: () => {
          const mine = new Map([
            ['test', new TestChain({ network: 'test' })],
            ['test-ed25519', new TestChain({ network: 'test-ed25519', scheme: 'eddsa-ed25519' })],
          ]);
          return { authorizers: [custodyApprovalAuthorizer({ trust, chains: (n) => mine.get(n) })] };
        },
      });
  const keys = testKeys();
  const log = captureLogger('info');
  const config = (await import('./identity-harness.ts')).testConfig();
  const audit = new AuditLog({
    hmacKey: keys.auditHmacKey,
    checkpointKey: keys.auditCheckpointKey,
    checkpointEvery: config.auditCheckpointEvery,
  });
  const custody = await createCustody({
    db: opts.db.db,
    audit,
    coordinator: cluster.coordinator,
    chains,
    logger: log.logger,
    ...(opts.watchIntervalMs ? { watchIntervalMs: opts.watchIntervalMs } : {}),
    ...(opts.bus ? { bus: opts.bus } : {}),
    ...(opts.eventRelay ? { eventRelay: opts.eventRelay } : {}),
  });
  const security = await startSecurityApp({
    db: opts.db,
    keys,
    logger: log,
    routes: [custodyRoutes(custody, { testChainFaucet: opts.testChainFaucet ?? false })],
  });
  const app = security.app;
  // As the API role does: the MPC layer's security events join the platform's.
  const unforward = forwardMpcSecurityEvents(
    cluster.coordinator.events,
    security.services.events,
    opts.db.db,
  );
  const org = await makeOrg(security.services, 'custody');

  const call: CustodyHarness['call'] = async (method, url, token, body, headers = {}) => {
    const r = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
    });
    return { status: r.statusCode, body: r.json() };
  };
  const registerApproverKey: CustodyHarness['registerApproverKey'] = async (
    user,
    key = generateApproverKey(),
  ) => {
    const r = await call('POST', '/v1/approver-keys', user.token, {
      publicKey: key.publicKey,
      label: 'test',
      proof: signApproverProof(key, org.orgId, user.id),
    });
    if (r.status !== 201) throw new Error(`register approver key: ${JSON.stringify(r.body)}`);
    return { id: r.body.id as string, key };
  };
  const ownerKey = generateApproverKey();
  await registerApproverKey(org.users.owner, ownerKey);
  trust.trust(org.orgId, ownerKey.publicKey);
  if (opts.nodeProcesses) {
    // Each node operator lists the owner key in the node's own file, with the CLI.
    const keyFile = join(dir, 'owner-key.json');
    writeFileSync(keyFile, JSON.stringify(ownerKey), { mode: 0o600 });
    for (const n of cluster.cluster.nodes) {
      const file = join(nodeDataDir(cluster.cluster, n.id), 'trusted-owners.json');
      const r = runCli([
        'approve',
        '--trust-owner',
        '--org',
        org.orgId,
        '--key',
        keyFile,
        '--trust-file',
        file,
        '--json',
      ]);
      if (r.code !== 0) throw new Error(`trust owner on node ${n.id}: ${r.stderr}${r.stdout}`);
    }
  }
  const owner = org.users.owner;
  const endorse: CustodyHarness['endorse'] = async (approverKeyId) => {
    const st = await call('GET', `/v1/approver-keys/${approverKeyId}/endorsement-statement`, owner.token);
    const r = await call('POST', `/v1/approver-keys/${approverKeyId}/endorsement`, owner.token, {
      publicKey: ownerKey.publicKey,
      signature: signWithApproverKey(ownerKey, statementMessage(st.body)),
    });
    if (r.status !== 200) throw new Error(`endorse: ${JSON.stringify(r.body)}`);
  };
  const signPolicy: CustodyHarness['signPolicy'] = async (vaultId) => {
    const v = await call('GET', `/v1/vaults/${vaultId}`, owner.token);
    const r = await call('POST', `/v1/vaults/${vaultId}/policy-signature`, owner.token, {
      publicKey: ownerKey.publicKey,
      signature: signWithApproverKey(ownerKey, statementMessage(v.body.policy)),
    });
    if (r.status !== 200) throw new Error(`sign policy: ${JSON.stringify(r.body)}`);
  };
  return {
    db: opts.db,
    app,
    security,
    custody,
    cluster,
    chain,
    chainEd,
    trust,
    org,
    ownerKey,
    call,
    registerApproverKey,
    endorse,
    signPolicy,
    async close() {
      unforward();
      await custody.stop();
      chain.stop();
      await security.close();
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A random address on a test chain that is not ours. */
export function externalAddress(chain: TestChain): string {
  const pk =
    chain.signingScheme === 'eddsa-ed25519'
      ? ed25519.getPublicKey(ed25519.utils.randomSecretKey())
      : secp256k1.getPublicKey(secp256k1.utils.randomSecretKey());
  return chain.deriveAddress(pk);
}

/** Three `custos mpc-node start` processes on NATS and a coordinator, shaped like an InProcessCluster. */
async function startNodeProcesses(dir: string, natsUrl: string, poolSize: number): Promise<InProcessCluster> {
  const cluster = await createLocalCluster({
    dir,
    nodes: 3,
    threshold: 2,
    poolSize,
    kdf: { memoryCost: 1024, timeCost: 1 },
    namespace: `h${randomBytes(6).toString('hex')}`,
  });
  const procs = new Map<number, ChildProcess>();
  const start = async (id: number) => {
    const { proc: p } = await spawnCliUntil(
      ['mpc-node', 'start', '--id', String(id), '--cluster', cluster.path!],
      { CUSTOS_NATS_URL: natsUrl, CUSTOS_LOG_LEVEL: 'warn' },
      '"event":"ready"',
    );
    procs.set(id, p);
  };
  const stopNode = async (id: number) => {
    const p = procs.get(id);
    procs.delete(id);
    if (!p) return;
    p.kill('SIGTERM');
    await waitExit(p, 15_000).catch(() => p.kill('SIGKILL'));
  };
  await Promise.all(cluster.nodes.map((n) => start(n.id)));
  const bus = await createBus({ natsUrl, name: 'custody-harness-coordinator' });
  const coordinator = openCoordinator({ cluster, bus });
  await coordinator.start();
  const end = Date.now() + 15_000;
  while (!cluster.nodes.every((n) => coordinator.heartbeats().has(n.id))) {
    if (Date.now() > end) throw new Error('no heartbeats from the node processes');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    cluster,
    nodes: new Map(),
    coordinator,
    hub: undefined,
    stopNode,
    startNode: async () => {
      throw new Error('node processes have no in-process MpcNode to return');
    },
    stop: async () => {
      await coordinator.stop();
      await Promise.all([...procs.keys()].map(stopNode));
      await bus.close();
    },
  };
}

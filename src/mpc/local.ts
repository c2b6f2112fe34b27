// Opening nodes and coordinators from a cluster file, and a whole cluster in one process (`custos dev`,
// unit tests, benchmarks): each node with its own data directory, its own secret and its own bus
// connection (in-process buses on one hub, or NATS).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Bus, createBus, type NatsTlsFiles } from '../bus/index.ts';
import { MemoryBusHub } from '../bus/memory.ts';
import { MpcError } from '../errors.ts';
import { MpcCoordinator } from './client.ts';
import {
  clusterNode,
  clusterPath,
  createLocalCluster,
  type LoadedCluster,
  loadClusterFile,
  readControlPlaneKey,
  readSecretFile,
} from './cluster.ts';
import { loadNodeIdentity } from './identity.ts';
import { MpcNode, type MpcNodeOptions, type NodeLogger } from './node.ts';
import { FileKeyRegistry } from './registry.ts';
import { availableSchemes } from './schemes.ts';
import { type KdfParams, SecretKeyring } from './secure-file.ts';

export interface OpenNodeOptions
  extends Partial<Omit<MpcNodeOptions, 'identity' | 'keyring' | 'cluster' | 'bus'>> {
  cluster: LoadedCluster;
  id: number;
  bus: Bus;
  /** Default: the cluster file's dataDir for this node. */
  dataDir?: string;
  /** Default: CUSTOS_NODE_SECRET, then the cluster file's secretFile. */
  secret?: string;
}

export function nodeDataDir(cluster: LoadedCluster, id: number, given?: string): string {
  if (given) return given;
  const n = clusterNode(cluster, id);
  if (!n.dataDir)
    throw new MpcError(
      'CUSTOS_MPC_NODE_STATE',
      `node ${id}: no dataDir in the cluster file; pass --data-dir`,
    );
  return clusterPath(cluster, n.dataDir);
}

export function nodeSecret(
  cluster: LoadedCluster | undefined,
  id: number,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const v = env['CUSTOS_NODE_SECRET'];
  if (v !== undefined && v !== '') return v;
  const file = env['CUSTOS_NODE_SECRET_FILE'];
  if (file) return readSecretFile(file);
  const n = cluster?.nodes.find((x) => x.id === id);
  if (cluster && n?.secretFile) return readSecretFile(clusterPath(cluster, n.secretFile));
  throw new MpcError(
    'CUSTOS_MPC_SECRET_INVALID',
    `node ${id}: no node secret (set CUSTOS_NODE_SECRET or CUSTOS_NODE_SECRET_FILE); refusing to start`,
  );
}

/** Opens (does not start) a node: decrypts its identity with the secret (wrong secret → refuses). */
export async function openNode(o: OpenNodeOptions): Promise<MpcNode> {
  const { cluster, id, bus, dataDir: given, secret: givenSecret, ...rest } = o;
  const dataDir = nodeDataDir(cluster, id, given);
  const secret = givenSecret ?? nodeSecret(cluster, id);
  const { identity, keyring } = await loadNodeIdentity(dataDir, id, new SecretKeyring(secret));
  return new MpcNode({ ...rest, identity, keyring, dataDir, cluster, bus });
}

export function openCoordinator(o: {
  cluster: LoadedCluster;
  bus: Bus;
  logger?: NodeLogger;
  controlPlaneKey?: Uint8Array;
}): MpcCoordinator {
  const keyFile = o.cluster.controlPlane.keyFile;
  if (!o.controlPlaneKey && !keyFile) {
    throw new MpcError('CUSTOS_MPC_NODE_STATE', 'the cluster file names no controlPlane.keyFile');
  }
  const key = o.controlPlaneKey ?? readControlPlaneKey(clusterPath(o.cluster, keyFile!));
  const registryPath = o.cluster.path ? join(clusterPath(o.cluster, '.'), 'keys.json') : undefined;
  return new MpcCoordinator({
    bus: o.bus,
    cluster: o.cluster,
    controlPlaneKey: key,
    ...(registryPath ? { registry: new FileKeyRegistry(registryPath) } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  });
}

export interface InProcessClusterOptions {
  dir: string;
  nodes?: number;
  threshold?: number;
  /** Existing secrets per node id (e.g. from ensureSecret); generated into DIR/secrets otherwise. */
  secrets?: Record<number, string>;
  controlPlaneKeyHex?: string;
  kdf?: Partial<KdfParams>;
  poolSize?: number;
  logger?: NodeLogger;
  /** NATS URL; default: in-process buses on one hub. */
  natsUrl?: string;
  /** TLS files for the NATS connections (see CUSTOS_NATS_TLS_*). */
  natsTls?: NatsTlsFiles;
  hub?: MemoryBusHub;
  namespace?: string;
  nodeOptions?: (id: number) => Partial<Omit<MpcNodeOptions, 'identity' | 'keyring' | 'cluster' | 'bus'>>;
}

export interface InProcessCluster {
  cluster: LoadedCluster;
  nodes: Map<number, MpcNode>;
  coordinator: MpcCoordinator;
  hub: MemoryBusHub | undefined;
  /** Stops one node (simulates a crash for tests). */
  stopNode(id: number): Promise<void>;
  /** Starts a stopped node again from its data directory. */
  startNode(id: number): Promise<MpcNode>;
  stop(): Promise<void>;
}

/** Creates DIR/cluster.json on first use, then starts every node and a coordinator in this process. */
export async function startInProcessCluster(o: InProcessClusterOptions): Promise<InProcessCluster> {
  const file = join(o.dir, 'cluster.json');
  const cluster = existsSync(file)
    ? loadClusterFile(file)
    : await createLocalCluster({
        dir: o.dir,
        nodes: o.nodes ?? 3,
        threshold: o.threshold ?? 2,
        ...(o.secrets ? { secrets: o.secrets } : {}),
        ...(o.controlPlaneKeyHex ? { controlPlaneKeyHex: o.controlPlaneKeyHex } : {}),
        ...(o.kdf ? { kdf: o.kdf } : {}),
        ...(o.poolSize !== undefined ? { poolSize: o.poolSize } : {}),
        ...(o.namespace ? { namespace: o.namespace } : {}),
      });
  const hub = o.natsUrl ? undefined : (o.hub ?? new MemoryBusHub());
  const buses: Bus[] = [];
  const newBus = async (name: string) => {
    const b = await createBus({
      ...(o.natsUrl ? { natsUrl: o.natsUrl, ...(o.natsTls ? { natsTls: o.natsTls } : {}) } : { hub: hub! }),
      name,
    });
    buses.push(b);
    return b;
  };
  const nodes = new Map<number, MpcNode>();
  let coordinatorRef: MpcCoordinator | undefined;
  const nodeBuses = new Map<number, Bus>();
  const startNode = async (id: number): Promise<MpcNode> => {
    const bus = await newBus(`custos-mpc-node-${id}`);
    nodeBuses.set(id, bus);
    const node = await openNode({
      cluster,
      id,
      bus,
      ...(o.secrets?.[id] ? { secret: o.secrets[id] } : { secret: nodeSecret(cluster, id, {}) }),
      ...(o.logger ? { logger: o.logger } : {}),
      ...(o.poolSize !== undefined ? { poolSize: o.poolSize } : {}),
      ...(o.nodeOptions?.(id) ?? {}),
    });
    await node.start();
    nodes.set(id, node);
    // One stream for the whole in-process cluster: the coordinator's emitter carries the nodes' events.
    if (coordinatorRef) coordinatorRef.events.pipeFrom(node.events);
    return node;
  };
  // In parallel: each node's Argon2id runs on the libuv pool, so three nodes start in about the time of one.
  await availableSchemes();
  await Promise.all(cluster.nodes.map((n) => startNode(n.id)));
  const coordinator = openCoordinator({
    cluster,
    bus: await newBus('custos-mpc-coordinator'),
    ...(o.controlPlaneKeyHex
      ? { controlPlaneKey: Uint8Array.from(Buffer.from(o.controlPlaneKeyHex, 'hex')) }
      : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  });
  await coordinator.start();
  coordinatorRef = coordinator;
  for (const n of nodes.values()) coordinator.events.pipeFrom(n.events);
  const stopNode = async (id: number) => {
    await nodes.get(id)?.stop();
    nodes.delete(id);
    const b = nodeBuses.get(id);
    nodeBuses.delete(id);
    if (b) {
      await b.close();
      buses.splice(buses.indexOf(b), 1);
    }
  };
  return {
    cluster,
    nodes,
    coordinator,
    hub,
    stopNode,
    startNode,
    stop: async () => {
      await coordinator.stop();
      for (const id of [...nodes.keys()]) await stopNode(id);
      for (const b of buses) await b.close();
    },
  };
}

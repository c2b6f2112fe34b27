// The cluster file: which nodes exist (id, Ed25519 identity, X25519 key), the control plane's
// request-signing public key, and defaults (threshold, timeouts, pool size). Every node and the
// coordinator load the same file; relative paths in it are relative to the file's directory.
// `createLocalCluster` writes a ready cluster for tests, demos and `custos dev`.

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { z } from 'zod';
import { MpcError } from '../errors.ts';
import { initNodeIdentity, type NodePublicIdentity } from './identity.ts';
import { type KdfParams, SecretKeyring, writeFileDurable } from './secure-file.ts';

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

export const clusterFileSchema = z
  .object({
    version: z.literal(1),
    /** Subject namespace: several clusters can share one NATS (custos.mpc.<namespace>.…). */
    namespace: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/)
      .optional(),
    threshold: z.number().int().min(1).max(255),
    controlPlane: z.object({
      publicKey: hex(32),
      /** Where the coordinator finds the private key (tests and demos; production keeps it elsewhere). */
      keyFile: z.string().optional(),
    }),
    nodes: z
      .array(
        z.object({
          id: z.number().int().min(1).max(255),
          publicKey: hex(32),
          dhPublicKey: hex(32),
          dataDir: z.string().optional(),
          secretFile: z.string().optional(),
        }),
      )
      .min(1)
      .max(255),
    timeouts: z
      .object({
        signMs: z.number().int().positive().default(10_000),
        keygenMs: z.number().int().positive().default(120_000),
        heartbeatMs: z.number().int().positive().default(1000),
      })
      .prefault({}),
    pool: z
      .object({
        size: z.number().int().min(0).max(100_000).default(16),
        /** Refill starts below this fraction of size (then fills up to size). */
        lowWater: z.number().min(0).max(1).default(0.5),
      })
      .prefault({}),
    limits: z
      .object({
        maxMessageBytes: z
          .number()
          .int()
          .positive()
          .default(1024 * 1024),
        messagesPerSecond: z.number().int().positive().default(5000),
      })
      .prefault({}),
  })
  .strict();

export type ClusterFile = z.infer<typeof clusterFileSchema>;
export type ClusterNode = ClusterFile['nodes'][number];

export interface LoadedCluster extends ClusterFile {
  /** Absolute path of the cluster file (undefined when built in memory). */
  path: string | undefined;
}

export function loadClusterFile(path: string): LoadedCluster {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new MpcError('CUSTOS_MPC_NODE_STATE', `cluster file ${abs} not found`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(abs, 'utf8'));
  } catch (e) {
    throw new MpcError('CUSTOS_MPC_NODE_STATE', `${abs}: not JSON (${(e as Error).message})`);
  }
  return { ...parseCluster(raw, abs), path: abs };
}

export function parseCluster(raw: unknown, where = 'cluster'): ClusterFile {
  const r = clusterFileSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new MpcError('CUSTOS_MPC_NODE_STATE', `${where}: ${i.path.join('.')}: ${i.message}`);
  }
  const ids = new Set<number>();
  for (const n of r.data.nodes) {
    if (ids.has(n.id)) throw new MpcError('CUSTOS_MPC_NODE_STATE', `${where}: node ${n.id} listed twice`);
    ids.add(n.id);
  }
  if (r.data.threshold > r.data.nodes.length) {
    throw new MpcError('CUSTOS_MPC_NODE_STATE', `${where}: threshold exceeds the number of nodes`);
  }
  return r.data;
}

/** Resolves a path from the cluster file relative to its directory. */
export function clusterPath(cluster: LoadedCluster, p: string): string {
  if (isAbsolute(p) || !cluster.path) return resolve(p);
  return resolve(dirname(cluster.path), p);
}

export function clusterNode(cluster: ClusterFile, id: number): ClusterNode {
  const n = cluster.nodes.find((x) => x.id === id);
  if (!n) throw new MpcError('CUSTOS_MPC_NODE_STATE', `node ${id} is not in the cluster file`);
  return n;
}

/** Reads a secret file (hex or text, trimmed). */
export function readSecretFile(path: string): string {
  if (!existsSync(path)) throw new MpcError('CUSTOS_MPC_SECRET_INVALID', `secret file ${path} not found`);
  const v = readFileSync(path, 'utf8').trim();
  if (v.length < 32) throw new MpcError('CUSTOS_MPC_SECRET_INVALID', `secret file ${path} is too short`);
  return v;
}

/** The control plane's request-signing key from a file of 64 hex characters. */
export function readControlPlaneKey(path: string): Uint8Array {
  const v = readSecretFile(path);
  if (!/^[0-9a-f]{64}$/.test(v))
    throw new MpcError('CUSTOS_MPC_SECRET_INVALID', `${path}: expected 32 bytes of hex`);
  return Uint8Array.from(Buffer.from(v, 'hex'));
}

export interface CreateLocalClusterOptions {
  dir: string;
  nodes: number;
  threshold: number;
  /** Existing secrets per node id (dev passes ensureSecret values); generated otherwise. */
  secrets?: Record<number, string>;
  controlPlaneKeyHex?: string;
  kdf?: Partial<KdfParams>;
  poolSize?: number;
  poolLowWater?: number;
  namespace?: string;
}

/**
 * Writes a ready local cluster: DIR/node-N/ (identity), DIR/secrets/node-N.secret and
 * DIR/secrets/control-plane.key (mode 0600), DIR/cluster.json. Refuses a directory that already has one.
 */
export async function createLocalCluster(opts: CreateLocalClusterOptions): Promise<LoadedCluster> {
  const dir = resolve(opts.dir);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 255) {
    throw new MpcError('CUSTOS_MPC_BAD_REQUEST', '--nodes must be 1..255');
  }
  if (!Number.isInteger(opts.threshold) || opts.threshold < 1 || opts.threshold > opts.nodes) {
    throw new MpcError('CUSTOS_MPC_BAD_REQUEST', '--threshold must be 1..nodes');
  }
  const file = join(dir, 'cluster.json');
  if (existsSync(file)) throw new MpcError('CUSTOS_MPC_NODE_STATE', `${file} already exists`);
  mkdirSync(join(dir, 'secrets'), { recursive: true, mode: 0o700 });
  chmodSync(join(dir, 'secrets'), 0o700);
  // Secrets handed in by the caller (custos dev keeps them in its own secrets directory) are not copied.
  const cpPath = join(dir, 'secrets', 'control-plane.key');
  if (!opts.controlPlaneKeyHex && !existsSync(cpPath)) {
    writeFileDurable(cpPath, `${randomBytes(32).toString('hex')}\n`, 0o600);
  }
  const cpKey = opts.controlPlaneKeyHex
    ? Uint8Array.from(Buffer.from(opts.controlPlaneKeyHex, 'hex'))
    : readControlPlaneKey(cpPath);
  if (cpKey.length !== 32)
    throw new MpcError('CUSTOS_MPC_SECRET_INVALID', 'control-plane key: expected 32 bytes');
  const nodes: ClusterNode[] = [];
  for (let id = 1; id <= opts.nodes; id++) {
    const secretPath = join(dir, 'secrets', `node-${id}.secret`);
    const given = opts.secrets?.[id];
    if (!given && !existsSync(secretPath)) {
      writeFileDurable(secretPath, `${randomBytes(32).toString('hex')}\n`, 0o600);
    }
    const keyring = new SecretKeyring(given ?? readSecretFile(secretPath), opts.kdf ? { kdf: opts.kdf } : {});
    const nodeDir = join(dir, `node-${id}`);
    const identity = await initNodeIdentity(nodeDir, id, keyring);
    const pub: NodePublicIdentity = identity.public;
    identity.destroy();
    keyring.destroy();
    nodes.push({
      ...pub,
      dataDir: relative(dir, nodeDir),
      ...(given ? {} : { secretFile: relative(dir, secretPath) }),
    });
  }
  const cluster: ClusterFile = {
    version: 1,
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    threshold: opts.threshold,
    controlPlane: {
      publicKey: Buffer.from(ed25519.getPublicKey(cpKey)).toString('hex'),
      ...(opts.controlPlaneKeyHex ? {} : { keyFile: relative(dir, cpPath) }),
    },
    nodes,
    timeouts: { signMs: 10_000, keygenMs: 120_000, heartbeatMs: 1000 },
    pool: { size: opts.poolSize ?? 16, lowWater: opts.poolLowWater ?? 0.5 },
    limits: { maxMessageBytes: 1024 * 1024, messagesPerSecond: 5000 },
  };
  cpKey.fill(0);
  writeFileDurable(file, `${JSON.stringify(cluster, null, 2)}\n`, 0o644);
  return { ...parseCluster(cluster, file), path: file };
}

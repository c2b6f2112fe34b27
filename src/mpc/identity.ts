// A node's long-term identity: an Ed25519 key that signs every envelope and heartbeat it sends, and an
// X25519 key for the per-peer-pair channel keys. Both live in <dataDir>/identity.enc, sealed under the
// node secret (secure-file.ts); <dataDir>/node.json holds the public half for operators to copy into
// the cluster file. A wrong or missing secret makes loadNodeIdentity fail: the node refuses to start.
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { ed25519PrivateKeyObject, ed25519Sign } from '../crypto/ed25519-openssl.ts';
import { MpcError } from '../errors.ts';
import { argonSaltOf, open, type SecretKeyring, seal, writeFileDurable } from './secure-file.ts';

export interface NodePublicIdentity {
  id: number;
  /** Ed25519 public key, hex. */
  publicKey: string;
  /** X25519 public key, hex. */
  dhPublicKey: string;
}

const IDENTITY_FILE = 'identity.enc';
const PUBLIC_FILE = 'node.json';

export function checkNodeId(id: number): number {
  if (!Number.isInteger(id) || id < 1 || id > 255) {
    throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `node id must be an integer 1..255, got ${id}`);
  }
  return id;
}

/** The node's secret keys, kept in private fields; never serialised except sealed. */
export class NodeIdentity {
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly dhPublicKey: Uint8Array;
  readonly #signSecret: Uint8Array;
  readonly #dhSecret: Uint8Array;
  readonly #signKey: KeyObject;

  constructor(id: number, signSecret: Uint8Array, dhSecret: Uint8Array) {
    this.id = checkNodeId(id);
    if (signSecret.length !== 32 || dhSecret.length !== 32) throw new Error('identity: bad key length');
    this.#signSecret = signSecret.slice();
    this.#dhSecret = dhSecret.slice();
    this.publicKey = ed25519.getPublicKey(this.#signSecret);
    this.#signKey = ed25519PrivateKeyObject(this.#signSecret);
    this.dhPublicKey = x25519.getPublicKey(this.#dhSecret);
  }

  static generate(id: number): NodeIdentity {
    return new NodeIdentity(id, ed25519.utils.randomSecretKey(), x25519.utils.randomSecretKey());
  }

  get public(): NodePublicIdentity {
    return {
      id: this.id,
      publicKey: Buffer.from(this.publicKey).toString('hex'),
      dhPublicKey: Buffer.from(this.dhPublicKey).toString('hex'),
    };
  }

  sign(message: Uint8Array): Uint8Array {
    return ed25519Sign(this.#signKey, message);
  }

  /** X25519 shared secret with a peer (rejects low-order points: noble throws on an all-zero result). */
  dh(peerDhPublicKey: Uint8Array): Uint8Array {
    return x25519.getSharedSecret(this.#dhSecret, peerDhPublicKey);
  }

  /** @internal for sealing and backups only. */
  exportSecret(): Uint8Array {
    const out = new Uint8Array(1 + 32 + 32);
    out[0] = this.id;
    out.set(this.#signSecret, 1);
    out.set(this.#dhSecret, 33);
    return out;
  }

  static importSecret(bytes: Uint8Array): NodeIdentity {
    if (bytes.length !== 65) throw new MpcError('CUSTOS_MPC_NODE_STATE', 'identity: bad length');
    return new NodeIdentity(bytes[0]!, bytes.subarray(1, 33), bytes.subarray(33, 65));
  }

  destroy(): void {
    this.#signSecret.fill(0);
    this.#dhSecret.fill(0);
  }

  toString(): string {
    return `NodeIdentity(${this.id}, ${this.public.publicKey})`;
  }
  toJSON(): NodePublicIdentity {
    return this.public;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

export function identityExists(dataDir: string): boolean {
  return existsSync(join(resolve(dataDir), IDENTITY_FILE));
}

/** Creates a new identity in `dataDir` (refuses to overwrite one). */
export async function initNodeIdentity(
  dataDir: string,
  id: number,
  keyring: SecretKeyring,
): Promise<NodeIdentity> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (identityExists(dir)) {
    throw new MpcError(
      'CUSTOS_MPC_NODE_STATE',
      `${dir} already holds a node identity; refusing to replace it`,
    );
  }
  const identity = NodeIdentity.generate(id);
  const secret = identity.exportSecret();
  try {
    writeFileDurable(join(dir, IDENTITY_FILE), await seal(keyring, `identity:${id}`, secret));
  } finally {
    secret.fill(0);
  }
  writeFileDurable(
    join(dir, PUBLIC_FILE),
    `${JSON.stringify({ version: 1, ...identity.public }, null, 2)}\n`,
    0o644,
  );
  return identity;
}

/**
 * Opens the node's identity. Returns the identity and a keyring bound to the identity file's argon
 * salt (so every file this node writes reuses one Argon2id derivation).
 */
export async function loadNodeIdentity(
  dataDir: string,
  id: number,
  keyring: SecretKeyring,
): Promise<{ identity: NodeIdentity; keyring: SecretKeyring }> {
  const dir = resolve(dataDir);
  const path = join(dir, IDENTITY_FILE);
  if (!existsSync(path)) {
    throw new MpcError(
      'CUSTOS_MPC_NODE_STATE',
      `${dir} holds no node identity; run custos mpc-node init --id ${id} --data-dir ${dataDir}`,
    );
  }
  const sealed = new Uint8Array(readFileSync(path));
  const bound = keyring.withSalt(argonSaltOf(sealed));
  let secret: Uint8Array;
  try {
    secret = await open(bound, `identity:${id}`, sealed, path);
  } catch (e) {
    throw new MpcError(
      'CUSTOS_MPC_SECRET_INVALID',
      `node ${id}: cannot open ${path}: the node secret is wrong (or the file belongs to another node id, or was altered); refusing to start`,
      { cause: e },
    );
  }
  try {
    const identity = NodeIdentity.importSecret(secret);
    if (identity.id !== id)
      throw new MpcError('CUSTOS_MPC_NODE_STATE', `${path} is node ${identity.id}, not ${id}`);
    return { identity, keyring: bound };
  } finally {
    secret.fill(0);
  }
}

export function readPublicIdentity(dataDir: string): NodePublicIdentity {
  const p = join(resolve(dataDir), PUBLIC_FILE);
  if (!existsSync(p)) throw new MpcError('CUSTOS_MPC_NODE_STATE', `${p} not found`);
  const j = JSON.parse(readFileSync(p, 'utf8')) as NodePublicIdentity;
  return { id: j.id, publicKey: j.publicKey, dhPublicKey: j.dhPublicKey };
}

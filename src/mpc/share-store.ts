// A node's key shares and presignatures on disk, each file sealed under the node secret
// (secure-file.ts). Layout under the node's data directory:
//   keys/<keyId>/share.enc        the current share + its public metadata (both authenticated)
//   keys/<keyId>/share.next.enc   a new share from refresh/reshare, until the coordinator commits it
//   keys/<keyId>/lock.json        present while the key is locked (cheating verdict)
//   presig/<keyId>/<signers>/<h>.enc  one presignature per file; deleted (durably) BEFORE it is used
// Shares leave this module only to the scheme (importShareFromStorage) or sealed in a backup.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { SchemeName } from '../crypto/threshold.ts';
import { MpcError } from '../errors.ts';
import { NodeIdentity } from './identity.ts';
import {
  open,
  openFile,
  removeFileDurable,
  removeFileDurableAsync,
  type SecretKeyring,
  seal,
  sealToFile,
  writeFileDurable,
} from './secure-file.ts';

export interface KeyMeta {
  keyId: string;
  scheme: SchemeName;
  threshold: number;
  parties: number[];
  /** hex */
  publicKey: string;
  /** hex */
  chainCode: string;
  allowRawSigning: boolean;
  /** 0 after DKG, +1 per refresh/reshare. */
  generation: number;
  createdAt: string;
}

export interface KeyLock {
  lockedAt: string;
  reason: string;
  culprit: number | null;
  sessionId?: string;
}

export interface StoredShare {
  meta: KeyMeta;
  share: Uint8Array;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function checkKeyId(keyId: string): string {
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) {
    throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `key id must match ${KEY_ID.source}`);
  }
  return keyId;
}

export const signersKey = (signers: readonly number[]): string =>
  [...signers].sort((a, b) => a - b).join('-');

// The file name is the id in hex, so a restarted node rebuilds its pool index from a directory listing.
function presigFileName(id: string): string {
  if (id.length === 0 || id.length > 100)
    throw new MpcError('CUSTOS_MPC_NODE_STATE', 'presignature id length');
  return `${Buffer.from(id, 'utf8').toString('hex')}.enc`;
}

function presigIdOf(file: string): string {
  return Buffer.from(file.slice(0, -4), 'hex').toString('utf8');
}

function encodeStored(s: StoredShare): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ meta: s.meta, share: Buffer.from(s.share).toString('base64') }),
  );
}

function decodeStored(bytes: Uint8Array): StoredShare {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as { meta: KeyMeta; share: string };
  bytes.fill(0);
  return { meta: j.meta, share: new Uint8Array(Buffer.from(j.share, 'base64')) };
}

export class ShareStore {
  readonly dir: string;
  readonly #keyring: SecretKeyring;

  constructor(dataDir: string, keyring: SecretKeyring) {
    this.dir = resolve(dataDir);
    this.#keyring = keyring;
    mkdirSync(join(this.dir, 'keys'), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.dir, 'presig'), { recursive: true, mode: 0o700 });
  }

  #keyDir(keyId: string): string {
    return join(this.dir, 'keys', checkKeyId(keyId));
  }

  /** Stores a share; `pending` writes share.next.enc (refresh/reshare) instead of the current one. */
  async saveShare(s: StoredShare, opts: { pending?: boolean } = {}): Promise<void> {
    const dir = this.#keyDir(s.meta.keyId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, opts.pending ? 'share.next.enc' : 'share.enc');
    if (!opts.pending && existsSync(join(dir, 'share.enc'))) {
      throw new MpcError('CUSTOS_MPC_NODE_STATE', `key ${s.meta.keyId} already has a share on this node`);
    }
    const plain = encodeStored(s);
    try {
      await sealToFile(this.#keyring, `share:${s.meta.keyId}`, file, plain);
    } finally {
      plain.fill(0);
    }
  }

  async loadShare(keyId: string, opts: { pending?: boolean } = {}): Promise<StoredShare | null> {
    const file = join(this.#keyDir(keyId), opts.pending ? 'share.next.enc' : 'share.enc');
    if (!existsSync(file)) return null;
    const s = decodeStored(await openFile(this.#keyring, `share:${keyId}`, file));
    if (s.meta.keyId !== keyId)
      throw new MpcError('CUSTOS_MPC_NODE_STATE', `${file}: holds key ${s.meta.keyId}`);
    return s;
  }

  keyIds(): string[] {
    return readdirSync(join(this.dir, 'keys')).filter(
      (k) => KEY_ID.test(k) && existsSync(join(this.dir, 'keys', k, 'share.enc')),
    );
  }

  async loadAll(): Promise<StoredShare[]> {
    const out: StoredShare[] = [];
    for (const k of this.keyIds()) {
      const s = await this.loadShare(k);
      if (s) out.push(s);
    }
    return out;
  }

  hasPending(keyId: string): boolean {
    return existsSync(join(this.#keyDir(keyId), 'share.next.enc'));
  }

  /** Makes share.next.enc the current share (or deletes the key when this node left the committee). */
  commitPending(keyId: string, opts: { removed?: boolean } = {}): void {
    const dir = this.#keyDir(keyId);
    const next = join(dir, 'share.next.enc');
    if (opts.removed) {
      this.deleteKey(keyId);
      return;
    }
    if (!existsSync(next)) throw new MpcError('CUSTOS_MPC_NODE_STATE', `key ${keyId}: no pending share`);
    writeFileDurable(join(dir, 'share.enc'), readFileSync(next));
    removeFileDurable(next);
    this.dropPresigs(keyId);
  }

  discardPending(keyId: string): void {
    removeFileDurable(join(this.#keyDir(keyId), 'share.next.enc'));
  }

  deleteKey(keyId: string): void {
    rmSync(this.#keyDir(keyId), { recursive: true, force: true });
    this.dropPresigs(keyId);
  }

  lock(keyId: string, lock: KeyLock): void {
    const dir = this.#keyDir(keyId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileDurable(join(dir, 'lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  }

  readLock(keyId: string): KeyLock | null {
    const p = join(this.#keyDir(keyId), 'lock.json');
    if (!existsSync(p)) return null;
    return JSON.parse(readFileSync(p, 'utf8')) as KeyLock;
  }

  unlock(keyId: string): void {
    removeFileDurable(join(this.#keyDir(keyId), 'lock.json'));
  }

  // Presignatures ---------------------------------------------------------------------------------

  #presigDir(keyId: string, signers: string): string {
    return join(this.dir, 'presig', checkKeyId(keyId), signers);
  }

  async savePresig(keyId: string, signers: string, id: string, bytes: Uint8Array): Promise<void> {
    const dir = this.#presigDir(keyId, signers);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const payload = new TextEncoder().encode(
      JSON.stringify({ id, p: Buffer.from(bytes).toString('base64') }),
    );
    try {
      await sealToFile(
        this.#keyring,
        `presig:${keyId}:${signers}:${id}`,
        join(dir, presigFileName(id)),
        payload,
      );
    } finally {
      payload.fill(0);
      bytes.fill(0);
    }
  }

  /** Presignature ids on disk per signer set of a key, oldest first. */
  listPresigs(keyId: string): Map<string, string[]> {
    const base = join(this.dir, 'presig', checkKeyId(keyId));
    const out = new Map<string, string[]>();
    if (!existsSync(base)) return out;
    for (const signers of readdirSync(base)) {
      const files = readdirSync(join(base, signers))
        .filter((f) => f.endsWith('.enc'))
        .map((f) => ({ f, t: statSync(join(base, signers, f)).mtimeMs }))
        .sort((a, b) => a.t - b.t)
        .map((x) => presigIdOf(x.f));
      out.set(signers, files);
    }
    return out;
  }

  /**
   * Takes a presignature for use: reads and decrypts it, then deletes the file durably BEFORE
   * returning, so a crash after this point can never use it twice. Null when it is not here.
   */
  async takePresig(keyId: string, signers: string, id: string): Promise<Uint8Array | null> {
    const path = join(this.#presigDir(keyId, signers), presigFileName(id));
    // Claimed by an atomic rename first: of two takers (concurrent calls, or processes) exactly one
    // gets the file; the other finds nothing. Then it is deleted durably, without blocking the
    // event loop, and only then used.
    const claimed = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.taking`;
    try {
      await rename(path, claimed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const sealed = new Uint8Array(readFileSync(claimed));
    await removeFileDurableAsync(claimed);
    const plain = await open(this.#keyring, `presig:${keyId}:${signers}:${id}`, sealed, path);
    const j = JSON.parse(new TextDecoder().decode(plain)) as { id: string; p: string };
    plain.fill(0);
    if (j.id !== id) return null;
    return new Uint8Array(Buffer.from(j.p, 'base64'));
  }

  dropPresigs(keyId: string): void {
    rmSync(join(this.dir, 'presig', checkKeyId(keyId)), { recursive: true, force: true });
  }

  // Backup ----------------------------------------------------------------------------------------

  /** One sealed file with the identity and every current share, under `backupKeyring`. */
  async backup(identity: NodeIdentity, backupKeyring: SecretKeyring): Promise<Uint8Array> {
    const shares = await this.loadAll();
    const locks = Object.fromEntries(this.keyIds().map((k) => [k, this.readLock(k)]));
    const secret = identity.exportSecret();
    const plain = new TextEncoder().encode(
      JSON.stringify({
        version: 1,
        nodeId: identity.id,
        createdAt: new Date().toISOString(),
        identity: Buffer.from(secret).toString('base64'),
        shares: shares.map((s) => ({ meta: s.meta, share: Buffer.from(s.share).toString('base64') })),
        locks,
      }),
    );
    secret.fill(0);
    for (const s of shares) s.share.fill(0);
    try {
      return await seal(backupKeyring, `backup:node-${identity.id}`, plain);
    } finally {
      plain.fill(0);
    }
  }
}

/** Opens a backup file: the identity and shares, for `custos mpc-node restore`. */
export async function openBackup(
  sealed: Uint8Array,
  nodeId: number,
  backupKeyring: SecretKeyring,
): Promise<{ identity: NodeIdentity; shares: StoredShare[]; locks: Record<string, KeyLock | null> }> {
  const plain = await open(backupKeyring, `backup:node-${nodeId}`, sealed, 'backup');
  const j = JSON.parse(new TextDecoder().decode(plain)) as {
    identity: string;
    shares: { meta: KeyMeta; share: string }[];
    locks: Record<string, KeyLock | null>;
  };
  plain.fill(0);
  const secret = new Uint8Array(Buffer.from(j.identity, 'base64'));
  const identity = NodeIdentity.importSecret(secret);
  secret.fill(0);
  return {
    identity,
    shares: j.shares.map((s) => ({ meta: s.meta, share: new Uint8Array(Buffer.from(s.share, 'base64')) })),
    locks: j.locks,
  };
}

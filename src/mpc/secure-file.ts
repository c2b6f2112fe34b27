// Encryption at rest for everything an MPC node keeps on disk (identity, key shares, presignatures,
// backups): AES-256-GCM under a key-encryption key derived from the node secret.
//
// KEK derivation: master = Argon2id(node secret, argon salt, params) once per (secret, salt) per process,
// then a per-file key = HKDF-SHA256(master, per-file salt, "custos/mpc/file/v1" || purpose). The design
// asked for Argon2id over a per-file salt; running Argon2id (~300 ms, 64 MiB) for every presignature
// file would cap the pool refill rate, so the memory-hard step is done once and every file still gets
// its own key from its own random salt (docs/mpc.md, "Encryption at rest").
//
// File layout (all of it authenticated — the header is the AEAD's associated data, together with the
// file's purpose, so a share file renamed to another key id fails to open):
//   magic "CSTS" | version u8 | argon m u32 | argon t u32 | argon p u8 | argon salt 16 | file salt 16 |
//   nonce 12 | ciphertext+tag
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open as openAsync, rename as renameAsync, rm as rmAsync } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hashRaw } from '@node-rs/argon2';
import { MpcError } from '../errors.ts';

const MAGIC = new Uint8Array([0x43, 0x53, 0x54, 0x53]); // "CSTS"
const VERSION = 1;
const HEADER_LEN = 4 + 1 + 4 + 4 + 1 + 16 + 16 + 12;
const ARGON2ID = 2; // @node-rs/argon2 Algorithm.Argon2id (a const enum, not importable here)

export interface KdfParams {
  /** KiB of memory. Default 65536 (64 MiB). */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const DEFAULT_KDF: KdfParams = { memoryCost: 65536, timeCost: 3, parallelism: 1 };

/**
 * The node secret plus a cache of derived master keys. Create one per process from the secret and
 * keep it; `destroy()` zeroes the cached keys.
 */
export class SecretKeyring {
  readonly #secret: Uint8Array;
  readonly #masters = new Map<string, Promise<Uint8Array>>();
  readonly kdf: KdfParams;
  /** The salt this node uses for new files (one Argon2id run per process). */
  readonly argonSalt: Uint8Array;

  constructor(secret: string | Uint8Array, opts: { kdf?: Partial<KdfParams>; argonSalt?: Uint8Array } = {}) {
    const bytes = typeof secret === 'string' ? new TextEncoder().encode(secret.trim()) : secret.slice();
    if (bytes.length < 16) {
      throw new MpcError('CUSTOS_MPC_SECRET_INVALID', 'node secret: must be at least 16 bytes');
    }
    this.#secret = bytes;
    this.kdf = { ...DEFAULT_KDF, ...opts.kdf };
    this.argonSalt = opts.argonSalt ?? randomBytes(16);
  }

  /** @internal */
  master(salt: Uint8Array, kdf: KdfParams): Promise<Uint8Array> {
    const k = `${Buffer.from(salt).toString('hex')}/${kdf.memoryCost}/${kdf.timeCost}/${kdf.parallelism}`;
    let p = this.#masters.get(k);
    if (!p) {
      p = hashRaw(this.#secret, {
        salt: Buffer.from(salt),
        memoryCost: kdf.memoryCost,
        timeCost: kdf.timeCost,
        parallelism: kdf.parallelism,
        outputLen: 32,
        algorithm: ARGON2ID as never,
      }).then((b) => new Uint8Array(b));
      this.#masters.set(k, p);
    }
    return p;
  }

  /** A keyring with the same secret and a fixed argon salt (used to reopen files made elsewhere). */
  withSalt(argonSalt: Uint8Array): SecretKeyring {
    return new SecretKeyring(this.#secret, { kdf: this.kdf, argonSalt });
  }

  destroy(): void {
    this.#secret.fill(0);
    for (const p of this.#masters.values()) void p.then((k) => k.fill(0));
    this.#masters.clear();
  }

  toString(): string {
    return 'SecretKeyring([secret])';
  }
  toJSON(): string {
    return this.toString();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function fileKey(master: Uint8Array, fileSalt: Uint8Array, purpose: string): Uint8Array {
  const info = new TextEncoder().encode(`custos/mpc/file/v1\0${purpose}`);
  return hkdf(sha256, master, fileSalt, info, 32);
}

/** Encrypts `plaintext` for storage under the keyring; `purpose` names the file's role (AAD). */
export async function seal(
  keyring: SecretKeyring,
  purpose: string,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const kdf = keyring.kdf;
  const header = new Uint8Array(HEADER_LEN);
  const dv = new DataView(header.buffer);
  header.set(MAGIC, 0);
  header[4] = VERSION;
  dv.setUint32(5, kdf.memoryCost);
  dv.setUint32(9, kdf.timeCost);
  header[13] = kdf.parallelism;
  header.set(keyring.argonSalt, 14);
  const fileSalt = randomBytes(16);
  header.set(fileSalt, 30);
  const nonce = randomBytes(12);
  header.set(nonce, 46);
  const master = await keyring.master(keyring.argonSalt, kdf);
  const key = fileKey(master, fileSalt, purpose);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.concat([header, new TextEncoder().encode(purpose)]));
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  key.fill(0);
  const out = new Uint8Array(header.length + ct.length);
  out.set(header, 0);
  out.set(ct, header.length);
  return out;
}

/** Decrypts a sealed file. Wrong secret, wrong purpose or any tampering → CUSTOS_MPC_SECRET_INVALID. */
export async function open(
  keyring: SecretKeyring,
  purpose: string,
  sealed: Uint8Array,
  what = purpose,
): Promise<Uint8Array> {
  if (sealed.length < HEADER_LEN + 16 || !MAGIC.every((b, i) => sealed[i] === b) || sealed[4] !== VERSION) {
    throw new MpcError('CUSTOS_MPC_SECRET_INVALID', `${what}: not an encrypted Custos node file`);
  }
  const dv = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const kdf: KdfParams = { memoryCost: dv.getUint32(5), timeCost: dv.getUint32(9), parallelism: sealed[13]! };
  if (kdf.memoryCost < 8 || kdf.memoryCost > 4 * 1024 * 1024 || kdf.timeCost < 1 || kdf.timeCost > 64) {
    throw new MpcError('CUSTOS_MPC_SECRET_INVALID', `${what}: unsupported key-derivation parameters`);
  }
  const header = sealed.subarray(0, HEADER_LEN);
  const master = await keyring.master(sealed.slice(14, 30), kdf);
  const key = fileKey(master, sealed.subarray(30, 46), purpose);
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(46, 58));
    d.setAAD(Buffer.concat([header, new TextEncoder().encode(purpose)]));
    const body = sealed.subarray(HEADER_LEN);
    d.setAuthTag(body.subarray(body.length - 16));
    return new Uint8Array(Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]));
  } catch {
    throw new MpcError(
      'CUSTOS_MPC_SECRET_INVALID',
      `${what}: cannot decrypt (wrong node secret, or the file was altered)`,
    );
  } finally {
    key.fill(0);
  }
}

/** Write a file atomically and durably: temp file, fsync, rename, fsync the directory. */
export function writeFileDurable(path: string, content: Uint8Array | string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode, flush: true });
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Remove a file and make the removal durable (fsync of the directory). */
export function removeFileDurable(path: string): void {
  rmSync(path, { force: true });
  fsyncDir(dirname(path));
}

/**
 * `writeFileDurable` without blocking the event loop: the writes and fsyncs run on libuv's thread
 * pool, so a node (or three in one process) keeps serving messages while its disk syncs. Resolves
 * only once the file and its directory entry are durable.
 */
export async function writeFileDurableAsync(
  path: string,
  content: Uint8Array | string,
  mode = 0o600,
): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await openAsync(tmp, 'wx', mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await renameAsync(tmp, path);
  await fsyncDirAsync(dirname(path));
}

/** `removeFileDurable` without blocking the event loop; resolves once the removal is durable. */
export async function removeFileDurableAsync(path: string): Promise<void> {
  await rmAsync(path, { force: true });
  await fsyncDirAsync(dirname(path));
}

async function fsyncDirAsync(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof openAsync>> | undefined;
  try {
    fh = await openAsync(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await fh?.close();
  }
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export async function sealToFile(
  keyring: SecretKeyring,
  purpose: string,
  path: string,
  plaintext: Uint8Array,
): Promise<void> {
  await writeFileDurableAsync(path, await seal(keyring, purpose, plaintext));
}

export async function openFile(keyring: SecretKeyring, purpose: string, path: string): Promise<Uint8Array> {
  return open(keyring, purpose, new Uint8Array(readFileSync(path)), path);
}

/** Reads the argon salt a sealed file was made with (so a node keeps using its identity's salt). */
export function argonSaltOf(sealed: Uint8Array): Uint8Array {
  if (sealed.length < HEADER_LEN || !MAGIC.every((b, i) => sealed[i] === b)) {
    throw new MpcError('CUSTOS_MPC_SECRET_INVALID', 'not an encrypted Custos node file');
  }
  return sealed.slice(14, 30);
}

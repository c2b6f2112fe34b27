// Non-hardened BIP32 derivation on a secp256k1 *public* key, for threshold keys whose private key
// never exists: the parties hold shares of k, the chain code is public, and signing under a path
// adds the cumulative tweak (sum of the IL values) to the shared secret. The child public key is
// exactly BIP32 CKDpub, so it matches @scure/bip32 derived from our xpub.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { HDKey } from '@scure/bip32';
import { Lru } from './lru.ts';

const Point = secp256k1.Point;
const N = Point.Fn.ORDER;
const HARDENED = 0x80000000;

/** Parses 'm/0/7' (or '' / 'm') into indices; hardened steps are refused (no private key exists). */
export function parseNonHardenedPath(path: string): number[] {
  if (typeof path !== 'string') throw new Error('hd: path must be a string');
  if (path === '' || path === 'm') return [];
  if (!path.startsWith('m/')) throw new Error(`hd: path must start with "m/": ${JSON.stringify(path)}`);
  const parts = path.slice(2).split('/');
  if (parts.length > 255) throw new Error('hd: path too deep');
  return parts.map((p) => {
    if (/['hH]$/.test(p)) throw new Error('hd: hardened derivation is impossible on a threshold key');
    if (!/^(0|[1-9][0-9]{0,9})$/.test(p)) throw new Error(`hd: bad path index ${JSON.stringify(p)}`);
    const i = Number(p);
    if (i >= HARDENED) throw new Error(`hd: index ${i} is hardened`);
    return i;
  });
}

export interface Secp256k1Derivation {
  /** Sum of IL values mod n: child secret = parent secret + tweak. */
  tweak: bigint;
  /** 33-byte compressed child public key. */
  publicKey: Uint8Array;
  chainCode: Uint8Array;
}

/**
 * Derivations already computed, by (public key, chain code, path). Everything in it is public —
 * the child public key, its chain code and the tweak all follow from the xpub — and every signing
 * request repeats the same derivation several times (control plane, coordinator, each node, its
 * authorizer), so it is memoised. Callers get copies.
 */
const derived = new Lru<string, Secp256k1Derivation>(4096);

/** BIP32 CKDpub along `path` from a compressed public key and chain code (memoised). */
export function deriveSecp256k1(
  publicKey: Uint8Array,
  chainCode: Uint8Array,
  path: string,
): Secp256k1Derivation {
  if (!(publicKey instanceof Uint8Array)) throw new Error('hd: public key must be bytes');
  if (!(chainCode instanceof Uint8Array) || chainCode.length !== 32)
    throw new Error('hd: chain code must be 32 bytes');
  if (typeof path !== 'string') throw new Error('hd: path must be a string');
  const key = `${Buffer.from(publicKey).toString('hex')}/${Buffer.from(chainCode).toString('hex')}/${path}`;
  const d = derived.getOrSet(key, () => computeSecp256k1(publicKey, chainCode, path));
  return { tweak: d.tweak, publicKey: d.publicKey.slice(), chainCode: d.chainCode.slice() };
}

function computeSecp256k1(publicKey: Uint8Array, chainCode: Uint8Array, path: string): Secp256k1Derivation {
  let P = Point.fromBytes(publicKey);
  P.assertValidity();
  let c = chainCode;
  let tweak = 0n;
  for (const index of parseNonHardenedPath(path)) {
    const data = new Uint8Array(37);
    data.set(P.toBytes(true), 0);
    new DataView(data.buffer).setUint32(33, index);
    const I = hmac(sha512, c, data);
    const il = bytesToBigInt(I.subarray(0, 32));
    // BIP32: IL >= n or a child at infinity makes the index invalid; the chance is ~2^-127.
    if (il >= N) throw new Error(`hd: invalid child at index ${index}`);
    const child = il === 0n ? P : P.add(Point.BASE.multiply(il));
    if (child.equals(Point.ZERO)) throw new Error(`hd: invalid child at index ${index}`);
    tweak = (tweak + il) % N;
    P = child;
    c = I.slice(32);
  }
  return { tweak, publicKey: P.toBytes(true), chainCode: c };
}

/** Standard mainnet xpub (version 0x0488B21E) of a root public key and chain code, depth 0. */
export function xpubOf(publicKey: Uint8Array, chainCode: Uint8Array): string {
  return new HDKey({ publicKey, chainCode }).publicExtendedKey;
}

export function bytesToBigInt(b: Uint8Array): bigint {
  let x = 0n;
  for (const v of b) x = (x << 8n) | BigInt(v);
  return x;
}

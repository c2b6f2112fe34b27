// Non-hardened additive HD derivation for threshold Ed25519 keys (Custos scheme, documented with test
// vectors in docs/crypto/frost.md). There is no Ed25519 standard for public derivation that works on a
// key whose private scalar never exists (SLIP-0010 is hardened-only), so we use the BIP32 CKDpub shape:
//
//   I       = HMAC-SHA512(key = chainCode, data = A || ser32(index))   A: 32-byte Ed25519 point, index BE
//   tweak   = int_LE(I[0..32]) mod L          (L = Ed25519 group order; tweak 0 => invalid index)
//   A_child = A + tweak·B                     (identity => invalid index)
//   c_child = I[32..64]
//
// The child secret scalar is parent scalar + tweak, so each party adds the (public) cumulative tweak to
// its share. Signatures under A_child are ordinary RFC 8032 signatures. As with BIP32 non-hardened
// derivation, a child secret plus the chain code reveals the parent secret: never export child keys.
import { ed25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { parseNonHardenedPath } from '../hd.ts';
import { Lru } from '../lru.ts';

const Point = ed25519.Point;
const L = Point.Fn.ORDER;

export interface Ed25519Derivation {
  /** Sum of per-level tweaks mod L: child secret = parent secret + tweak. */
  tweak: bigint;
  /** 32-byte child public key. */
  publicKey: Uint8Array;
  chainCode: Uint8Array;
}

/** Memoised derivations (all public: they follow from the public key and chain code); see ../hd.ts. */
const derived = new Lru<string, Ed25519Derivation>(4096);

export function deriveEd25519(publicKey: Uint8Array, chainCode: Uint8Array, path: string): Ed25519Derivation {
  if (!(chainCode instanceof Uint8Array) || chainCode.length !== 32) {
    throw new Error('hd/ed25519: chain code must be 32 bytes');
  }
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new Error('hd/ed25519: public key must be 32 bytes');
  }
  if (typeof path !== 'string') throw new Error('hd: path must be a string');
  const key = `${Buffer.from(publicKey).toString('hex')}/${Buffer.from(chainCode).toString('hex')}/${path}`;
  const d = derived.getOrSet(key, () => computeEd25519(publicKey, chainCode, path));
  return { tweak: d.tweak, publicKey: d.publicKey.slice(), chainCode: d.chainCode.slice() };
}

function computeEd25519(publicKey: Uint8Array, chainCode: Uint8Array, path: string): Ed25519Derivation {
  let A = Point.fromBytes(publicKey, false);
  A.assertValidity();
  if (A.is0() || !A.isTorsionFree())
    throw new Error('hd/ed25519: public key not in the prime-order subgroup');
  let c = chainCode;
  let tweak = 0n;
  for (const index of parseNonHardenedPath(path)) {
    const data = new Uint8Array(36);
    data.set(A.toBytes(), 0);
    new DataView(data.buffer).setUint32(32, index);
    const I = hmac(sha512, c, data);
    let t = 0n;
    for (let i = 31; i >= 0; i--) t = (t << 8n) | BigInt(I[i]!);
    t %= L;
    if (t === 0n) throw new Error(`hd/ed25519: invalid child at index ${index}`);
    const child = A.add(Point.BASE.multiply(t));
    if (child.is0()) throw new Error(`hd/ed25519: invalid child at index ${index}`);
    tweak = (tweak + t) % L;
    A = child;
    c = I.slice(32);
  }
  return { tweak, publicKey: A.toBytes(), chainCode: c };
}

// FROST ciphersuites (RFC 9591 §6) as this layer uses them: noble's FROST objects for the cryptographic
// steps, plus what noble leaves to the caller — strict wire codecs for points and scalars, the public
// key encoding each chain expects, HD derivation, and an independent single-key verifier.

import { createHash } from 'node:crypto';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { createFROST } from '@noble/curves/abstract/frost.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, schnorr_FROST, secp256k1_FROST, secp256k1_hasher } from '@noble/curves/secp256k1.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ed25519Verify } from '../ed25519-openssl.ts';
import { deriveSecp256k1 } from '../hd.ts';
import type { SchemeName } from '../threshold.ts';
import { deriveEd25519 } from './ed25519-hd.ts';
import { isInPrimeOrderSubgroup } from './ed25519-subgroup.ts';

/** The subset of a noble point this layer needs (method syntax keeps it structural across curves). */
export interface GPoint {
  add(o: GPoint): GPoint;
  subtract(o: GPoint): GPoint;
  negate(): GPoint;
  multiply(s: bigint): GPoint;
  multiplyUnsafe(s: bigint): GPoint;
  equals(o: GPoint): boolean;
  is0(): boolean;
  assertValidity(): void;
  isTorsionFree(): boolean;
  toBytes(compressed?: boolean): Uint8Array;
}

export interface GField {
  readonly ORDER: bigint;
  readonly BYTES: number;
  readonly isLE: boolean;
  create(n: bigint): bigint;
  add(a: bigint, b: bigint): bigint;
  sub(a: bigint, b: bigint): bigint;
  mul(a: bigint, b: bigint): bigint;
  neg(a: bigint): bigint;
  inv(a: bigint): bigint;
  toBytes(n: bigint): Uint8Array;
}

/** Result of HD derivation on a group key: child secret = parent secret + tweak. */
export interface SuiteDerivation {
  tweak: bigint;
  /** The child group point (full point, not x-only). */
  point: GPoint;
  chainCode: Uint8Array;
}

export interface FrostSuite {
  /** Wire code: first suite byte of every payload and of stored shares. */
  readonly id: number;
  readonly scheme: SchemeName;
  /** Prefix of protocol names, e.g. 'frost-ed25519' -> 'frost-ed25519/sign'. */
  readonly label: string;
  /** RFC 9591 contextString of the signing suite. */
  readonly ciphersuite: string;
  /** noble FROST used for commit / signShare / verifyShare / aggregate. */
  readonly sign: FROST;
  /** noble FROST used for DKG (for BIP340: plain secp256k1, so noble's Taproot auto-tweak is not applied). */
  readonly dkg: FROST;
  readonly BASE: GPoint;
  readonly ZERO: GPoint;
  readonly Fn: GField;
  readonly pointLen: number;
  readonly scalarLen: number;
  /** Length of the DKG proof of knowledge as noble encodes it (R || z). */
  readonly pokLen: number;
  /** PublicKeyInfo.publicKey length. */
  readonly publicKeyLen: number;
  /**
   * Strict point decoding: canonical encoding, on curve, not identity, prime-order subgroup. Validated
   * points are cached by encoding (see cachedDecoder); `persistent` for long-lived key material.
   */
  decodePoint(b: Uint8Array, persistent?: boolean): GPoint;
  /**
   * Registers, for the running protocol step's session, a point this party computed itself as a
   * multiple of the base point (its own nonce commitments), so noble's parsing of it skips the
   * subgroup check. Never for received bytes.
   */
  adoptOwnPoint(b: Uint8Array): void;
  /** Hash-to-scalar with noble's DKG prefix (RFC 9591 H-style), to attribute a bad proof of knowledge. */
  hashDkg(msg: Uint8Array): bigint;
  /** Group key normalisation right after DKG (BIP340: even Y). Returns -1 to negate the whole sharing. */
  dkgNormalisation(groupKey: GPoint): 1n | -1n;
  /** Encoding of a group point as the chain sees it (Ed25519 32 bytes; BIP340 x-only). */
  encodePublicKey(p: GPoint): Uint8Array;
  /** Inverse of encodePublicKey for a normalised root key. */
  decodePublicKey(b: Uint8Array): GPoint;
  /** Non-hardened HD derivation from a root public key + chain code. */
  derive(root: GPoint, chainCode: Uint8Array, path: string): SuiteDerivation;
  /** Independent single-key verifier (not noble's FROST code path). */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  readonly signatureLen: number;
}

const EdPoint = ed25519.Point;
const K1Point = schnorr.Point;

function bytesToNumber(b: Uint8Array, le: boolean): bigint {
  let x = 0n;
  if (le) for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  else for (const v of b) x = (x << 8n) | BigInt(v);
  return x;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function strictPoint(
  fromBytes: (b: Uint8Array) => GPoint,
  len: number,
  inSubgroup: ((p: GPoint) => boolean) | null,
): (b: Uint8Array) => GPoint {
  return (b) => {
    if (!(b instanceof Uint8Array) || b.length !== len) throw new Error(`point: expected ${len} bytes`);
    const p = fromBytes(b);
    p.assertValidity();
    if (p.is0()) throw new Error('point: identity');
    if (inSubgroup && !inSubgroup(p)) throw new Error('point: not in the prime-order subgroup');
    if (!equalBytes(p.toBytes(), b)) throw new Error('point: non-canonical encoding');
    return p;
  };
}

/** Bound on the process-wide cache of validated key points (public values only; FIFO eviction). */
const KEY_POINT_CACHE_MAX = 4096;

/** Validated points of the protocol step that is running (see withPointScope), or null. */
let sessionPoints: Map<string, GPoint> | null = null;

/**
 * Runs one synchronous protocol step with `scope` as the session's cache of validated points: a point
 * received in this session is validated once, when our decoder first sees it, and noble's FROST
 * parsing the same bytes again within the session gets the validated object back. Each party
 * (FrostParty) has its own scope, so every party checks every point it receives.
 */
export function withPointScope<T>(scope: Map<string, GPoint>, step: () => T): T {
  const prev = sessionPoints;
  sessionPoints = scope;
  try {
    return step();
  } finally {
    sessionPoints = prev;
  }
}

/**
 * Memoises a strict decoder by exact encoding. Validation is a pure function of the bytes, so a point
 * that passed once may be returned again as the same (immutable) object for the same bytes. Two
 * tiers: key material (group keys, Feldman commitments, derived keys: `persistent`) in a bounded
 * process-wide cache, everything else (nonce commitments, DKG/reshare messages) in the running
 * session's scope. Only points that passed every check are stored; failures throw every time.
 */
function cachedDecoder(
  tag: string,
  decode: (b: Uint8Array) => GPoint,
  len: number,
): { decode: (b: Uint8Array, persistent?: boolean) => GPoint; adopt: (b: Uint8Array, p: GPoint) => void } {
  const keyPoints = new Map<string, GPoint>();
  const keyOf = (b: Uint8Array) => {
    if (!(b instanceof Uint8Array) || b.length !== len) throw new Error(`point: expected ${len} bytes`);
    return tag + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  };
  return {
    decode: (b, persistent = false) => {
      const key = keyOf(b);
      const hit = keyPoints.get(key) ?? sessionPoints?.get(key);
      if (hit !== undefined) return hit;
      const p = decode(b);
      if (persistent || sessionPoints === null) {
        if (keyPoints.size >= KEY_POINT_CACHE_MAX) keyPoints.delete(keyPoints.keys().next().value!);
        keyPoints.set(key, p);
      } else {
        sessionPoints.set(key, p);
      }
      return p;
    },
    // A point this party computed itself (see FrostSuite.adoptOwnPoint), for the running session.
    adopt: (b, p) => {
      const key = keyOf(b);
      if (sessionPoints === null) throw new Error('point: adoptOwnPoint outside a protocol step');
      sessionPoints.set(key, p);
    },
  };
}

/** Ed25519 points that passed strict decoding (by identity; noble points are frozen). */
const edChecked = new WeakSet<object>();

/**
 * An Ed25519 point whose prime-order-subgroup membership was established when it was decoded.
 * noble's FROST validates every point it parses from bytes, twice for Ed25519 (its own check and the
 * suite's validatePoint hook), and the torsion check is a full scalar multiplication by L (~0.7 ms).
 * Our FROST instance decodes through edDecode, so each received point is checked once, at decode, and
 * isTorsionFree() on that same object returns the recorded result. Any other instance (arithmetic
 * results are plain noble points) runs the full check.
 */
class CheckedEdPoint extends EdPoint {
  override isTorsionFree(): boolean {
    return edChecked.has(this) || isInPrimeOrderSubgroup(this);
  }
  static override fromBytes(bytes: Uint8Array, zip215 = false): EdwardsPoint {
    if (zip215) throw new Error('point: ZIP-215 decoding not allowed');
    return edDecode(bytes) as unknown as EdwardsPoint;
  }
  // noble's MSM checks `p instanceof Point`, and arithmetic on these points returns plain ed25519
  // points: every ed25519 point counts as an instance of this constructor.
  static override [Symbol.hasInstance](x: unknown): boolean {
    return x instanceof EdPoint;
  }
}

function checkedEd(p: GPoint): GPoint {
  const e = p as unknown as EdwardsPoint;
  const q = new CheckedEdPoint(e.X, e.Y, e.Z, e.T);
  edChecked.add(q);
  return q as unknown as GPoint;
}
// [L]P = O, as isTorsionFree(), with cheaper arithmetic (ed25519-subgroup.ts).
const edInSubgroup = (p: GPoint) => isInPrimeOrderSubgroup(p as unknown as EdwardsPoint);
const edStrict = strictPoint((b) => EdPoint.fromBytes(b, false), 32, edInSubgroup);
const edCache = cachedDecoder('ed:', (b) => checkedEd(edStrict(b)), 32);
const edDecode = edCache.decode;
// Own nonce commitments are k·B with B the base point: in the prime-order subgroup by construction.
// Everything but the (costly) subgroup check still runs.
const edOwnStrict = strictPoint((b) => EdPoint.fromBytes(b, false), 32, null);
const k1Cache = cachedDecoder(
  'k1:',
  strictPoint((b) => K1Point.fromBytes(b), 33, null),
  33,
);
const k1Decode = k1Cache.decode;
const DERIVATION_CACHE_MAX = 1024;

/**
 * HD derivation is a pure function of public inputs (root key, chain code, path); memoise it so a key
 * signing repeatedly under one path does not redo the root's subgroup check and the per-level base
 * multiplications every session. Bounded, FIFO; results are frozen, the chain code copied out.
 */
function memoDerive(
  tag: string,
  derive: (root: GPoint, chainCode: Uint8Array, path: string) => SuiteDerivation,
): (root: GPoint, chainCode: Uint8Array, path: string) => SuiteDerivation {
  const memo = new Map<string, SuiteDerivation>();
  const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return (root, chainCode, path) => {
    if (!(chainCode instanceof Uint8Array) || typeof path !== 'string') return derive(root, chainCode, path);
    const key = `${tag}${hex(root.toBytes(true))}/${hex(chainCode)}/${path}`;
    let d = memo.get(key);
    if (d === undefined) {
      d = Object.freeze(derive(root, chainCode, path));
      if (memo.size >= DERIVATION_CACHE_MAX) memo.delete(memo.keys().next().value!);
      memo.set(key, d);
    }
    return { tweak: d.tweak, point: d.point, chainCode: d.chainCode.slice() };
  };
}

const hasEvenY = (p: GPoint) => (p.toBytes(true)[0] ?? 0) === 0x02;

/**
 * FROST(Ed25519, SHA-512) built from noble's createFROST with exactly the options of noble's
 * ed25519_FROST (name, SHA-512, undecorated H2, validatePoint hook), except that points are decoded by
 * edDecode (strict, validated once, cached) and SHA-512 is OpenSSL's. Same algorithm and outputs (RFC 9591 vectors in
 * rfc9591-frost.test.ts); each point is still checked on first sight.
 */
const ed25519Frost: FROST = createFROST({
  name: 'FROST-ED25519-SHA512-v1',
  Point: CheckedEdPoint as unknown as typeof EdPoint,
  validatePoint: (p) => {
    p.assertValidity();
    if (!p.isTorsionFree()) throw new Error('bad point: not torsion-free');
  },
  // SHA-512 from node:crypto (OpenSSL): same function, ~5x faster than the JS one on FROST inputs.
  hash: (msg) => {
    const d = createHash('sha512').update(msg).digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  },
  H2: '',
});

// RFC 9591 §6.1: FROST(Ed25519, SHA-512). Signatures are plain RFC 8032 Ed25519.
export const ed25519Suite: FrostSuite = {
  id: 1,
  scheme: 'eddsa-ed25519',
  label: 'frost-ed25519',
  ciphersuite: 'FROST-ED25519-SHA512-v1',
  sign: ed25519Frost,
  dkg: ed25519Frost,
  BASE: EdPoint.BASE,
  ZERO: EdPoint.ZERO,
  Fn: EdPoint.Fn,
  pointLen: 32,
  scalarLen: 32,
  pokLen: 64,
  publicKeyLen: 32,
  signatureLen: 64,
  decodePoint: edDecode,
  adoptOwnPoint: (b) => edCache.adopt(b, checkedEd(edOwnStrict(b))),
  // noble's default hashToScalar: H(DST || msg) read little-endian, reduced mod L.
  hashDkg: (msg) =>
    EdPoint.Fn.create(
      bytesToNumber(sha512(concat(new TextEncoder().encode('FROST-ED25519-SHA512-v1dkg'), msg)), true),
    ),
  dkgNormalisation: () => 1n,
  encodePublicKey: (p) => p.toBytes(),
  decodePublicKey: edDecode,
  derive: memoDerive('ed:', (root, chainCode, path) => {
    const d = deriveEd25519(root.toBytes(), chainCode, path);
    return { tweak: d.tweak, point: edDecode(d.publicKey, true), chainCode: d.chainCode };
  }),
  verify: (pk, msg, sig) => {
    // OpenSSL: the strict RFC 8032 check (as noble's zip215: false), ~15x faster.
    return ed25519Verify(pk, msg, sig);
  },
};

// RFC 9591 §6.5 suite with BIP340 challenge and even-Y handling (noble's FROST-secp256k1-SHA256-TR-v1,
// as frost-secp256k1-tr). Divergence: DKG runs on the plain secp256k1 suite and we negate the sharing
// to an even-Y group key ourselves, because noble's TR DKG applies the BIP341 TapTweak to the output
// and our root key must stay the untweaked BIP32 root (Taproot tweaks are applied per signature).
export const bip340Suite: FrostSuite = {
  id: 2,
  scheme: 'schnorr-bip340',
  label: 'frost-bip340',
  ciphersuite: 'FROST-secp256k1-SHA256-TR-v1',
  sign: schnorr_FROST,
  dkg: secp256k1_FROST,
  BASE: K1Point.BASE,
  ZERO: K1Point.ZERO,
  Fn: K1Point.Fn,
  pointLen: 33,
  scalarLen: 32,
  pokLen: 65,
  publicKeyLen: 32,
  signatureLen: 64,
  decodePoint: k1Decode,
  // noble's secp256k1 FROST objects parse with their own decoder (no subgroup check: cofactor 1).
  adoptOwnPoint: () => {},
  hashDkg: (msg) => secp256k1_hasher.hashToScalar(msg, { DST: 'FROST-secp256k1-SHA256-v1dkg' }),
  dkgNormalisation: (p) => (hasEvenY(p) ? 1n : -1n),
  encodePublicKey: (p) => p.toBytes(true).slice(1),
  decodePublicKey: (b) => {
    if (!(b instanceof Uint8Array) || b.length !== 32) throw new Error('point: expected 32-byte x-only key');
    return k1Decode(concat(Uint8Array.of(0x02), b));
  },
  derive: memoDerive('k1:', (root, chainCode, path) => {
    const d = deriveSecp256k1(root.toBytes(true), chainCode, path);
    return { tweak: d.tweak, point: k1Decode(d.publicKey, true), chainCode: d.chainCode };
  }),
  verify: (pk, msg, sig) => {
    try {
      return schnorr.verify(sig, msg, pk);
    } catch {
      return false;
    }
  },
};

/**
 * RFC 9591 §6.5 FROST(secp256k1, SHA-256) without BIP340 changes. Used only to check our protocol layer
 * against the RFC's Appendix E vectors; not reachable from index.ts (its signatures are 65 bytes and
 * no chain accepts them). It carries the scheme label of its curve family because KeyShare requires one.
 */
export const secp256k1RfcSuite: FrostSuite = {
  ...bip340Suite,
  id: 3,
  label: 'frost-secp256k1',
  ciphersuite: 'FROST-secp256k1-SHA256-v1',
  sign: secp256k1_FROST,
  dkgNormalisation: () => 1n,
  encodePublicKey: (p) => p.toBytes(true),
  decodePublicKey: k1Decode,
  publicKeyLen: 33,
  signatureLen: 65,
  verify: (pk, msg, sig) => {
    try {
      return secp256k1_FROST.verify(sig, msg, pk);
    } catch {
      return false;
    }
  },
};

export const SUITES: readonly FrostSuite[] = [ed25519Suite, bip340Suite, secp256k1RfcSuite];

export function suiteById(id: number): FrostSuite {
  const s = SUITES.find((x) => x.id === id);
  if (!s) throw new Error(`frost: unknown suite ${id}`);
  return s;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Strict scalar decoding: exact length, canonical (< group order). */
export function decodeScalar(suite: FrostSuite, b: Uint8Array): bigint {
  if (!(b instanceof Uint8Array) || b.length !== suite.scalarLen) {
    throw new Error(`scalar: expected ${suite.scalarLen} bytes`);
  }
  const x = bytesToNumber(b, suite.Fn.isLE);
  if (x >= suite.Fn.ORDER) throw new Error('scalar: not reduced');
  return x;
}

/** Scalar times base point, accepting 0 (noble's multiply refuses it). */
export function mulBase(suite: FrostSuite, s: bigint): GPoint {
  const x = suite.Fn.create(s);
  return x === 0n ? suite.ZERO : suite.BASE.multiply(x);
}

/** Σ C_k · x^k: the Feldman/VSS evaluation of public commitments at x (RFC 9591 App. C.2). */
export function evalCommitments(suite: FrostSuite, commitments: readonly GPoint[], x: bigint): GPoint {
  let acc = suite.ZERO;
  let pow = 1n;
  for (const c of commitments) {
    acc = acc.add(c.multiplyUnsafe(pow));
    pow = suite.Fn.mul(pow, x);
  }
  return acc;
}

/** Lagrange coefficient at 0 for `xi` over the set `xs` (RFC 9591 §4.2 derive_interpolating_value). */
export function lagrangeAtZero(suite: FrostSuite, xs: readonly bigint[], xi: bigint): bigint {
  const Fn = suite.Fn;
  let num = 1n;
  let den = 1n;
  for (const x of xs) {
    if (x === xi) continue;
    num = Fn.mul(num, x);
    den = Fn.mul(den, Fn.sub(x, xi));
  }
  return Fn.mul(num, Fn.inv(den));
}

/** Domain-separated, length-prefixed SHA-256 over byte strings, for every hash this layer adds. */
export function taggedHash(tag: string, ...parts: Uint8Array[]): Uint8Array {
  const t = new TextEncoder().encode(tag);
  const chunks: Uint8Array[] = [u32(t.length), t];
  for (const p of parts) chunks.push(u32(p.length), p);
  return sha256(concat(...chunks));
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

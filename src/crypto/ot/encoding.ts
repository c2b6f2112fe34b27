// Shared low-level helpers for the OT and DKLs23 code: tagged, length-prefixed hashing (every hash
// input is domain-separated and unambiguous), scalar/point (de)serialisation with full validation,
// and a tiny binary writer/reader for canonical message payloads.
import { createHash, randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';

export const Point = secp256k1.Point;
export type Point = InstanceType<typeof secp256k1.Point>;
/** secp256k1 group order. */
export const N = Point.Fn.ORDER;
export const SCALAR_BYTES = 32;
export const POINT_BYTES = 33;

/** Raised by decoders; the protocol layer turns it into a ThresholdAbort naming the sender. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

/** k·G, allowing k = 0 (gives the identity). */
export const mulG = (k: bigint): Point => (k === 0n ? Point.ZERO : Point.BASE.multiply(k));

export const mod = (a: bigint): bigint => {
  const r = a % N;
  return r < 0n ? r + N : r;
};

export function bytesToBigInt(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

export function scalarToBytes(x: bigint): Uint8Array {
  return Uint8Array.from(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'));
}

/** Uniform non-zero scalar (rejection sampling; bias-free). */
export function randomScalar(): bigint {
  for (;;) {
    const b = randomBytes(32);
    const x = bytesToBigInt(b);
    b.fill(0);
    if (x > 0n && x < N) return x;
  }
}

/** Scalar decoded from 32 big-endian bytes; must be < N (and non-zero when `nonZero`). */
export function decodeScalar(b: Uint8Array, what: string, nonZero = false): bigint {
  if (b.length !== SCALAR_BYTES) throw new DecodeError(`${what}: expected 32 bytes`);
  const x = bytesToBigInt(b);
  if (x >= N) throw new DecodeError(`${what}: scalar out of range`);
  if (nonZero && x === 0n) throw new DecodeError(`${what}: zero scalar`);
  return x;
}

/** Compressed point; must be on the curve and not the identity. */
export function decodePoint(b: Uint8Array, what: string): Point {
  if (b.length !== POINT_BYTES) throw new DecodeError(`${what}: expected 33-byte compressed point`);
  let P: Point;
  try {
    P = Point.fromBytes(b);
    P.assertValidity();
  } catch {
    throw new DecodeError(`${what}: not a valid curve point`);
  }
  if (P.equals(Point.ZERO)) throw new DecodeError(`${what}: identity point`);
  return P;
}

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

export type HashPart = Uint8Array | string | number | bigint;

function partBytes(p: HashPart): Uint8Array {
  if (typeof p === 'string') return new TextEncoder().encode(p);
  if (typeof p === 'number') return u32(p);
  if (typeof p === 'bigint') return scalarToBytes(p);
  return p;
}

/** SHA-256 over a tag and parts, each length-prefixed (u32 BE), so no two inputs collide. */
export function taggedHash(tag: string, ...parts: HashPart[]): Uint8Array {
  const h = createHash('sha256');
  const t = new TextEncoder().encode(`custos/${tag}`);
  h.update(u32(t.length));
  h.update(t);
  for (const p of parts) {
    const b = partBytes(p);
    h.update(u32(b.length));
    h.update(b);
  }
  return new Uint8Array(h.digest());
}

/** Hash to a scalar: 64 bytes (two tagged hashes) reduced mod N, bias < 2^-256. */
export function hashToScalar(tag: string, ...parts: HashPart[]): bigint {
  const a = taggedHash(`${tag}/0`, ...parts);
  const b = taggedHash(`${tag}/1`, ...parts);
  const wide = new Uint8Array(64);
  wide.set(a, 0);
  wide.set(b, 32);
  return mod(bytesToBigInt(wide));
}

/** Constant-time equality for byte strings of equal public length. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Append-only canonical binary writer. */
export class Writer {
  private chunks: Uint8Array[] = [];
  private len = 0;
  bytes(b: Uint8Array): this {
    this.chunks.push(b);
    this.len += b.length;
    return this;
  }
  u8(n: number): this {
    return this.bytes(Uint8Array.of(n));
  }
  u16(n: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, n);
    return this.bytes(b);
  }
  scalar(x: bigint): this {
    return this.bytes(scalarToBytes(x));
  }
  point(P: Point): this {
    return this.bytes(P.toBytes(true));
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.chunks = [];
    return out;
  }
}

/** Strict reader: every read is bounds-checked and `end()` insists the payload is fully consumed. */
export class Reader {
  private o = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly ctx: string,
  ) {}
  bytes(n: number, what: string): Uint8Array {
    if (this.o + n > this.b.length) throw new DecodeError(`${this.ctx}: truncated at ${what}`);
    const out = this.b.subarray(this.o, this.o + n);
    this.o += n;
    return out;
  }
  u8(what: string): number {
    return this.bytes(1, what)[0]!;
  }
  u16(what: string): number {
    const b = this.bytes(2, what);
    return (b[0]! << 8) | b[1]!;
  }
  scalar(what: string, nonZero = false): bigint {
    return decodeScalar(this.bytes(32, what), `${this.ctx}: ${what}`, nonZero);
  }
  point(what: string): Point {
    return decodePoint(this.bytes(33, what), `${this.ctx}: ${what}`);
  }
  end(): void {
    if (this.o !== this.b.length)
      throw new DecodeError(`${this.ctx}: ${this.b.length - this.o} trailing bytes`);
  }
}

/** Schnorr proof of knowledge of x with X = x·G, bound to a context (session, protocol, prover). */
export function proveDlog(x: bigint, X: Point, context: Uint8Array): Uint8Array {
  const k = randomScalar();
  const K = mulG(k);
  const c = hashToScalar('pok-dlog', context, X.toBytes(true), K.toBytes(true));
  const z = mod(k + c * x);
  return new Writer().point(K).scalar(z).finish();
}

export const DLOG_PROOF_BYTES = POINT_BYTES + SCALAR_BYTES;

export function verifyDlog(X: Point, proof: Uint8Array, context: Uint8Array): boolean {
  try {
    const r = new Reader(proof, 'pok');
    const K = r.point('K');
    const z = r.scalar('z');
    r.end();
    const c = hashToScalar('pok-dlog', context, X.toBytes(true), K.toBytes(true));
    return mulG(z).equals(K.add(X.multiplyUnsafe(c)));
  } catch {
    return false;
  }
}

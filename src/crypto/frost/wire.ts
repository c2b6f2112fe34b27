// Canonical binary payloads of every FROST protocol message (docs/crypto/frost.md, "Message formats").
// Each payload repeats the envelope header (session, round, sender, addressee) and names its suite and
// kind, so a payload moved into another envelope fails validation; every field has one fixed encoding
// and the decoder accepts nothing else (exact length, canonical points and scalars).
import type { PartyId } from '../threshold.ts';
import type { FrostSuite, GPoint } from './suites.ts';
import { decodeScalar } from './suites.ts';

export const FROST_PAYLOAD_VERSION = 1;

export const KIND = {
  dkgCommit: 1,
  dkgShare: 2,
  dkgConfirm: 3,
  signCommit: 4,
  signShare: 5,
  reshareDeal: 6,
  reshareShare: 7,
  reshareConfirm: 8,
} as const;
export type Kind = (typeof KIND)[keyof typeof KIND];

type FieldType = 'point' | 'points' | 'scalar' | 'b32' | 'pok';
interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
}

/** Body layout per kind, in wire order. */
export const BODY: Readonly<Record<Kind, readonly FieldSpec[]>> = {
  [KIND.dkgCommit]: [
    { name: 'commitments', type: 'points' },
    { name: 'proofOfKnowledge', type: 'pok' },
    { name: 'chainCodeCommitment', type: 'b32' },
  ],
  [KIND.dkgShare]: [
    { name: 'signingShare', type: 'scalar' },
    { name: 'chainCodeSeed', type: 'b32' },
  ],
  [KIND.dkgConfirm]: [{ name: 'transcript', type: 'b32' }],
  [KIND.signCommit]: [
    { name: 'context', type: 'b32' },
    { name: 'hiding', type: 'point' },
    { name: 'binding', type: 'point' },
  ],
  [KIND.signShare]: [
    { name: 'commitmentList', type: 'b32' },
    { name: 'signatureShare', type: 'scalar' },
  ],
  [KIND.reshareDeal]: [
    { name: 'context', type: 'b32' },
    { name: 'oldCommitments', type: 'points' },
    { name: 'commitments', type: 'points' },
  ],
  [KIND.reshareShare]: [{ name: 'share', type: 'scalar' }],
  [KIND.reshareConfirm]: [{ name: 'transcript', type: 'b32' }],
};

export const HEADER_LEN = 39;

export interface PayloadHeader {
  kind: Kind;
  sessionId: Uint8Array;
  round: number;
  from: PartyId;
  /** null = broadcast */
  to: PartyId | null;
}

export type FieldValue = Uint8Array | Uint8Array[];

/** Values decoded from a payload: raw bytes plus parsed points/scalars. */
/** Bytes backed by a plain ArrayBuffer (what noble's FROST types expect). */
export type Bytes = Uint8Array<ArrayBuffer>;

export interface Decoded {
  bytes: Record<string, Bytes>;
  pointLists: Record<string, { bytes: Bytes[]; points: GPoint[] }>;
  points: Record<string, GPoint>;
  scalars: Record<string, bigint>;
}

/** Why a payload was refused: 'wrong-session' when it belongs to another session, else 'bad-message'. */
export class PayloadError extends Error {
  readonly reason: 'bad-message' | 'wrong-session';
  constructor(reason: 'bad-message' | 'wrong-session', message: string) {
    super(message);
    this.reason = reason;
  }
}

export function encodePayload(
  suite: FrostSuite,
  h: PayloadHeader,
  values: Record<string, FieldValue>,
): Uint8Array {
  const chunks: Uint8Array[] = [];
  const head = new Uint8Array(HEADER_LEN);
  head[0] = FROST_PAYLOAD_VERSION;
  head[1] = suite.id;
  head[2] = h.kind;
  head.set(h.sessionId, 3);
  new DataView(head.buffer).setUint16(35, h.round);
  head[37] = h.from;
  head[38] = h.to ?? 0;
  chunks.push(head);
  for (const f of BODY[h.kind]) {
    const v = values[f.name];
    if (v === undefined) throw new Error(`frost/wire: missing field ${f.name}`);
    if (f.type === 'points') {
      if (!Array.isArray(v) || v.length > 255) throw new Error(`frost/wire: ${f.name} must be a point list`);
      chunks.push(Uint8Array.of(v.length), ...v);
    } else {
      if (Array.isArray(v)) throw new Error(`frost/wire: ${f.name} must be bytes`);
      if (v.length !== fixedLen(suite, f.type)) throw new Error(`frost/wire: ${f.name} has wrong length`);
      chunks.push(v);
    }
  }
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function fixedLen(suite: FrostSuite, t: Exclude<FieldType, 'points'>): number {
  switch (t) {
    case 'point':
      return suite.pointLen;
    case 'scalar':
      return suite.scalarLen;
    case 'b32':
      return 32;
    case 'pok':
      return suite.pokLen;
  }
}

/** Decodes and validates every field; the header must match the envelope exactly. */
export function decodePayload(suite: FrostSuite, expect: PayloadHeader, bytes: Uint8Array): Decoded {
  const bad = (why: string): never => {
    throw new PayloadError('bad-message', why);
  };
  if (!(bytes instanceof Uint8Array) || bytes.length < HEADER_LEN) bad('payload too short');
  if (bytes[0] !== FROST_PAYLOAD_VERSION) bad(`unsupported payload version ${bytes[0]}`);
  if (bytes[1] !== suite.id) bad(`payload for suite ${bytes[1]}, expected ${suite.id}`);
  if (bytes[2] !== expect.kind) bad(`payload kind ${bytes[2]}, expected ${expect.kind}`);
  const sid = bytes.subarray(3, 35);
  for (let i = 0; i < 32; i++) {
    if (sid[i] !== expect.sessionId[i])
      throw new PayloadError('wrong-session', 'payload bound to another session');
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint16(35) !== expect.round) bad('payload bound to another round');
  if (bytes[37] !== expect.from) bad('payload bound to another sender');
  if (bytes[38] !== (expect.to ?? 0)) bad('payload bound to another addressee');
  const out: Decoded = { bytes: {}, pointLists: {}, points: {}, scalars: {} };
  let o = HEADER_LEN;
  for (const f of BODY[expect.kind]) {
    try {
      if (f.type === 'points') {
        if (o >= bytes.length) bad(`${f.name}: truncated`);
        const count = bytes[o++]!;
        const list: Bytes[] = [];
        const points: GPoint[] = [];
        for (let i = 0; i < count; i++) {
          if (o + suite.pointLen > bytes.length) bad(`${f.name}: truncated`);
          const b = bytes.slice(o, o + suite.pointLen);
          o += suite.pointLen;
          list.push(b);
          points.push(suite.decodePoint(b));
        }
        out.pointLists[f.name] = { bytes: list, points };
        continue;
      }
      const len = fixedLen(suite, f.type);
      if (o + len > bytes.length) bad(`${f.name}: truncated`);
      const b = bytes.slice(o, o + len);
      o += len;
      out.bytes[f.name] = b;
      if (f.type === 'point') out.points[f.name] = suite.decodePoint(b);
      if (f.type === 'scalar') out.scalars[f.name] = decodeScalar(suite, b);
      if (f.type === 'pok') {
        // noble encodes the proof as SerializeElement(R) || SerializeScalar(z).
        suite.decodePoint(b.subarray(0, suite.pointLen));
        decodeScalar(suite, b.subarray(suite.pointLen));
      }
    } catch (e) {
      if (e instanceof PayloadError) throw e;
      bad(`${f.name}: ${(e as Error).message}`);
    }
  }
  if (o !== bytes.length) bad('trailing bytes');
  return out;
}

/** Byte ranges of every field of a payload (header fields included), for negative tests and tooling. */
export function describePayload(
  suite: FrostSuite,
  bytes: Uint8Array,
): { name: string; offset: number; length: number }[] {
  const kind = bytes[2] as Kind;
  const specs = BODY[kind];
  if (!specs) throw new Error('frost/wire: unknown kind');
  const out = [
    { name: 'version', offset: 0, length: 1 },
    { name: 'suite', offset: 1, length: 1 },
    { name: 'kind', offset: 2, length: 1 },
    { name: 'sessionId', offset: 3, length: 32 },
    { name: 'round', offset: 35, length: 2 },
    { name: 'from', offset: 37, length: 1 },
    { name: 'to', offset: 38, length: 1 },
  ];
  let o = HEADER_LEN;
  for (const f of specs) {
    if (f.type === 'points') {
      const count = bytes[o] ?? 0;
      out.push({ name: `${f.name}.count`, offset: o, length: 1 });
      o++;
      for (let i = 0; i < count; i++) {
        out.push({ name: `${f.name}[${i}]`, offset: o, length: suite.pointLen });
        o += suite.pointLen;
      }
    } else {
      const len = fixedLen(suite, f.type);
      out.push({ name: f.name, offset: o, length: len });
      o += len;
    }
  }
  return out;
}

// The signed (and, point-to-point, encrypted) envelope every MPC protocol message travels in.
//
// Wire format (big-endian):
//   version u8 (=1) | flags u8 (bit 0: body encrypted) | protocol len u8 | protocol utf-8 |
//   session id 32 | round u16 | from u8 | to u8 (0 = broadcast) | seq u32 | nonce 12 | body len u32 |
//   body | Ed25519 signature 64
// The signature (by the sender's node identity) covers "custos/mpc/envelope/v1\0" and every byte
// before it, so protocol, session, round, sender, recipient and sequence number are all bound.
// Encrypted bodies are AES-256-GCM under the directional pair key (sender → recipient), random
// 96-bit nonce, with the header (everything before the body) as associated data: encrypt-then-sign.
// The channel always encrypts: one envelope carries everything one protocol step sends to one
// recipient (its broadcasts and its point-to-point messages), see bundle encoding below.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519Verify } from '../crypto/ed25519-openssl.ts';
import type { NodeIdentity } from './identity.ts';

export const ENVELOPE_VERSION = 1;
const SIG_DOMAIN = new TextEncoder().encode('custos/mpc/envelope/v1\0');
const FLAG_ENCRYPTED = 1;

export interface EnvelopeHeader {
  protocol: string;
  /** 32 bytes, lowercase hex */
  sessionId: string;
  round: number;
  from: number;
  /** null = broadcast */
  to: number | null;
  seq: number;
}

export interface DecodedEnvelope extends EnvelopeHeader {
  encrypted: boolean;
  nonce: Uint8Array;
  /** Everything before the body: the AEAD associated data. */
  header: Uint8Array;
  body: Uint8Array;
  /** Everything the signature covers (without the domain tag). */
  signed: Uint8Array;
  signature: Uint8Array;
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

function headerBytes(h: EnvelopeHeader, encrypted: boolean, nonce: Uint8Array, bodyLen: number): Uint8Array {
  const proto = new TextEncoder().encode(h.protocol);
  if (proto.length < 1 || proto.length > 255) throw new EnvelopeError('protocol name length');
  if (!/^[0-9a-f]{64}$/.test(h.sessionId)) throw new EnvelopeError('session id must be 32 bytes of hex');
  const out = new Uint8Array(3 + proto.length + 32 + 2 + 1 + 1 + 4 + 12 + 4);
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = ENVELOPE_VERSION;
  out[o++] = encrypted ? FLAG_ENCRYPTED : 0;
  out[o++] = proto.length;
  out.set(proto, o);
  o += proto.length;
  out.set(Buffer.from(h.sessionId, 'hex'), o);
  o += 32;
  dv.setUint16(o, h.round);
  o += 2;
  out[o++] = h.from;
  out[o++] = h.to ?? 0;
  dv.setUint32(o, h.seq);
  o += 4;
  out.set(nonce, o);
  o += 12;
  dv.setUint32(o, bodyLen);
  return out;
}

/** Directional AES-256-GCM key for messages from `from` to `to`. */
export function derivePairKey(
  identity: NodeIdentity,
  peer: { id: number; publicKey: Uint8Array; dhPublicKey: Uint8Array },
  direction: 'send' | 'receive',
): Uint8Array {
  const shared = identity.dh(peer.dhPublicKey);
  const me = { id: identity.id, publicKey: identity.publicKey, dhPublicKey: identity.dhPublicKey };
  const [lo, hi] = me.id < peer.id ? [me, peer] : [peer, me];
  // Salt binds both parties' identities and X25519 keys, so a key change gives a new channel key.
  const salt = sha256(
    Buffer.concat([
      Buffer.from('custos/mpc/pair/v1\0'),
      Buffer.from([lo.id]),
      lo.publicKey,
      lo.dhPublicKey,
      Buffer.from([hi.id]),
      hi.publicKey,
      hi.dhPublicKey,
    ]),
  );
  const [from, to] = direction === 'send' ? [me.id, peer.id] : [peer.id, me.id];
  const info = Buffer.concat([Buffer.from('custos/mpc/p2p-aead/v1\0'), Buffer.from([from, to])]);
  const key = hkdf(sha256, shared, salt, info, 32);
  shared.fill(0);
  return key;
}

/** Builds and signs an envelope; with `key`, the body is encrypted first. */
export function sealEnvelope(
  identity: NodeIdentity,
  h: EnvelopeHeader,
  payload: Uint8Array,
  key?: Uint8Array,
): Uint8Array {
  if (h.from !== identity.id) throw new EnvelopeError('from must be this node');
  const nonce = key ? randomBytes(12) : new Uint8Array(12);
  let body = payload;
  const header = headerBytes(h, key !== undefined, nonce, key ? payload.length + 16 : payload.length);
  if (key) {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(header);
    body = Buffer.concat([c.update(payload), c.final(), c.getAuthTag()]);
  }
  const signed = new Uint8Array(header.length + body.length);
  signed.set(header, 0);
  signed.set(body, header.length);
  const sig = identity.sign(Buffer.concat([SIG_DOMAIN, signed]));
  const out = new Uint8Array(signed.length + 64);
  out.set(signed, 0);
  out.set(sig, signed.length);
  return out;
}

/** Parses an envelope (no signature check yet). Throws EnvelopeError when malformed. */
export function decodeEnvelope(bytes: Uint8Array): DecodedEnvelope {
  const fail = (why: string): never => {
    throw new EnvelopeError(`envelope: ${why}`);
  };
  if (bytes.length < 3 + 1 + 32 + 2 + 2 + 4 + 12 + 4 + 64) fail('too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  if (bytes[o++] !== ENVELOPE_VERSION) fail('unsupported version');
  const flags = bytes[o++]!;
  if ((flags & ~FLAG_ENCRYPTED) !== 0) fail('unknown flags');
  const plen = bytes[o++]!;
  if (plen === 0 || bytes.length < 3 + plen + 32 + 2 + 2 + 4 + 12 + 4 + 64) fail('too short');
  let protocol = '';
  try {
    protocol = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(o, o + plen));
  } catch {
    fail('protocol not utf-8');
  }
  o += plen;
  const sessionId = Buffer.from(bytes.subarray(o, o + 32)).toString('hex');
  o += 32;
  const round = dv.getUint16(o);
  o += 2;
  const from = bytes[o++]!;
  const toRaw = bytes[o++]!;
  const seq = dv.getUint32(o);
  o += 4;
  const nonce = bytes.slice(o, o + 12);
  o += 12;
  const bodyLen = dv.getUint32(o);
  o += 4;
  if (bytes.length !== o + bodyLen + 64) fail('length mismatch');
  if (from === 0) fail('sender 0');
  const encrypted = (flags & FLAG_ENCRYPTED) !== 0;
  if (encrypted && bodyLen < 16) fail('short ciphertext');
  return {
    protocol,
    sessionId,
    round,
    from,
    to: toRaw === 0 ? null : toRaw,
    seq,
    encrypted,
    nonce,
    header: bytes.subarray(0, o),
    body: bytes.subarray(o, o + bodyLen),
    signed: bytes.subarray(0, o + bodyLen),
    signature: bytes.subarray(o + bodyLen),
  };
}

export function verifyEnvelopeSignature(env: DecodedEnvelope, senderPublicKey: Uint8Array): boolean {
  return ed25519Verify(senderPublicKey, Buffer.concat([SIG_DOMAIN, env.signed]), env.signature);
}

/** Decrypts an encrypted body; null when authentication fails. */
export function decryptBody(env: DecodedEnvelope, key: Uint8Array): Uint8Array | null {
  if (!env.encrypted) return env.body.slice();
  try {
    const d = createDecipheriv('aes-256-gcm', key, env.nonce);
    d.setAAD(env.header);
    d.setAuthTag(env.body.subarray(env.body.length - 16));
    return new Uint8Array(Buffer.concat([d.update(env.body.subarray(0, env.body.length - 16)), d.final()]));
  } catch {
    return null;
  }
}

/** One protocol step's messages for one recipient: broadcast and point-to-point payloads. */
export interface BundleItem {
  broadcast: boolean;
  payload: Uint8Array;
}

export function encodeBundle(items: readonly BundleItem[]): Uint8Array {
  let len = 2;
  for (const it of items) len += 1 + 4 + it.payload.length;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, items.length);
  let o = 2;
  for (const it of items) {
    out[o++] = it.broadcast ? 0 : 1;
    dv.setUint32(o, it.payload.length);
    o += 4;
    out.set(it.payload, o);
    o += it.payload.length;
  }
  return out;
}

export function decodeBundle(bytes: Uint8Array): BundleItem[] {
  const fail = (why: string): never => {
    throw new EnvelopeError(`bundle: ${why}`);
  };
  if (bytes.length < 2) fail('too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint16(0);
  if (n === 0) fail('empty');
  const out: BundleItem[] = [];
  let o = 2;
  for (let i = 0; i < n; i++) {
    if (o + 5 > bytes.length) fail('truncated');
    const kind = bytes[o++]!;
    if (kind > 1) fail('bad kind');
    const len = dv.getUint32(o);
    o += 4;
    if (o + len > bytes.length) fail('truncated');
    out.push({ broadcast: kind === 0, payload: bytes.slice(o, o + len) });
    o += len;
  }
  if (o !== bytes.length) fail('trailing bytes');
  return out;
}

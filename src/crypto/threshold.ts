// The one abstraction every threshold signing scheme implements (DKLs23 ECDSA, FROST Ed25519/BIP340),
// so MPC nodes drive them all the same way and never branch on the algorithm beyond choosing it.
//
// Every protocol (DKG, presign, sign, refresh, reshare) is a pure state machine: no I/O, no timers.
// A party object is fed the messages addressed to it for the current round and returns the messages
// it sends next, or its output when the protocol is finished. Transport, authentication, encryption
// and timeouts are the node's job (src/mpc), not the scheme's.

/** Party identifiers are small positive integers, 1..255, stable for the life of a key share. */
export type PartyId = number;

export type SchemeName = 'ecdsa-secp256k1' | 'eddsa-ed25519' | 'schnorr-bip340';

export const SCHEME_NAMES: readonly SchemeName[] = ['ecdsa-secp256k1', 'eddsa-ed25519', 'schnorr-bip340'];

/** Wire version of ProtocolMessage. Bumped on any incompatible payload change. */
export const PROTOCOL_MESSAGE_VERSION = 1;

/**
 * One message of one round of one session. `payload` is the scheme's canonical encoding of the
 * round's content; the header fields are also bound into every hash/proof transcript by the scheme,
 * so a message moved to another session, round or sender fails validation.
 */
export interface ProtocolMessage {
  readonly v: typeof PROTOCOL_MESSAGE_VERSION;
  /** e.g. 'dkls23/dkg', 'dkls23/presign', 'frost/sign' */
  readonly protocol: string;
  /** 32 bytes as lowercase hex, chosen by the coordinator, unique per session */
  readonly sessionId: string;
  readonly round: number;
  readonly from: PartyId;
  /** null = broadcast to every other party of the session; otherwise point-to-point */
  readonly to: PartyId | null;
  readonly payload: Uint8Array;
}

/** What a party returns from a step. */
export interface StepResult<Output> {
  /** Messages to deliver (broadcasts once each; the transport fans out). */
  readonly outgoing: ProtocolMessage[];
  /** Set once, on the final step. */
  readonly output?: Output;
}

/**
 * A party in a running protocol. Call `start()` once, then `receive(round messages)` with all the
 * messages addressed to this party for the round it is waiting for (`expectedRound`), from every
 * other participant, until `done`. Any invalid input throws ThresholdAbort and the party is dead:
 * every later call throws too, and no partial output is ever returned.
 */
export interface ProtocolParty<Output> {
  readonly protocol: string;
  readonly sessionId: string;
  readonly partyId: PartyId;
  /** Round whose messages receive() expects next; 0 before start(). */
  readonly expectedRound: number;
  /** Which parties must send to us in expectedRound (so the transport knows when a round is complete). */
  readonly expectedSenders: readonly PartyId[];
  readonly done: boolean;
  start(): StepResult<Output>;
  receive(messages: readonly ProtocolMessage[]): StepResult<Output>;
  /** Zero every secret held by the party (called on abort, timeout or completion). */
  destroy(): void;
}

/** Why a protocol was abandoned. `culprit` is set when a specific party provably misbehaved. */
export type AbortReason =
  | 'bad-message' // malformed: length, encoding, version, unknown field
  | 'wrong-session'
  | 'wrong-round'
  | 'unknown-sender'
  | 'duplicate-message'
  | 'missing-message'
  | 'invalid-proof' // a zero-knowledge proof, commitment opening or OT/multiplication check failed
  | 'invalid-share' // a Feldman/VSS check failed
  | 'invalid-signature' // the combined signature or a signature share does not verify
  | 'consumed' // a presignature or nonce was already used
  | 'bad-state'; // call out of order, or the party already aborted

/** Typed abort: names the protocol, round, culprit party (if any) and the reason. */
export class ThresholdAbort extends Error {
  override readonly name = 'ThresholdAbort';
  readonly protocol: string;
  readonly round: number;
  readonly culprit: PartyId | null;
  readonly reason: AbortReason;
  constructor(args: {
    protocol: string;
    round: number;
    culprit: PartyId | null;
    reason: AbortReason;
    message: string;
  }) {
    super(`${args.protocol}/round${args.round}: ${args.message}`);
    this.protocol = args.protocol;
    this.round = args.round;
    this.culprit = args.culprit;
    this.reason = args.reason;
  }
  /**
   * A cheating verdict: the key must be locked and the session never retried. A combined signature
   * that does not verify is one even without a culprit: honest runs always produce a valid
   * signature, so some signer deviated (DKLs23 cannot say which for ψ or (w, u)), and retrying would
   * hand that signer another selective-failure attempt.
   */
  get isCheating(): boolean {
    if (this.reason === 'invalid-signature') return true;
    return this.culprit !== null && (this.reason === 'invalid-proof' || this.reason === 'invalid-share');
  }
}

/** Public data of a threshold key, the same at every party (safe to store and show). */
export interface PublicKeyInfo {
  readonly scheme: SchemeName;
  readonly threshold: number;
  readonly parties: readonly PartyId[];
  /** 33-byte compressed secp256k1 (ECDSA), 32-byte Ed25519, or 32-byte x-only (BIP340). */
  readonly publicKey: Uint8Array;
  /** 32-byte chain code fixed at DKG, for non-hardened HD derivation. */
  readonly chainCode: Uint8Array;
}

/** A signature as the scheme produces it. */
export interface SchemeSignature {
  /** 64 bytes: r||s (ECDSA, low-s) or R||s (EdDSA) or R.x||s (BIP340). */
  readonly signature: Uint8Array;
  /** ECDSA only: recovery id 0 or 1. */
  readonly recovery?: number;
  /** The public key the signature verifies under (the derived child key when a path was given). */
  readonly signingPublicKey: Uint8Array;
}

/**
 * A party's secret share of a key. Opaque: schemes define the concrete class. Implementations must
 * keep secrets out of toString/JSON.stringify/util.inspect, and serialise only through
 * ThresholdScheme.exportShareForStorage.
 */
export interface KeyShare {
  readonly scheme: SchemeName;
  readonly partyId: PartyId;
  readonly info: PublicKeyInfo;
}

export interface DkgParams {
  sessionId: string;
  partyId: PartyId;
  parties: readonly PartyId[];
  threshold: number;
}

export interface SignParams<Share extends KeyShare> {
  sessionId: string;
  share: Share;
  /** Exactly `threshold` parties, including this one. */
  signers: readonly PartyId[];
  /** ECDSA: a 32-byte digest the caller computed. EdDSA/BIP340: the message itself. */
  message: Uint8Array;
  /** Non-hardened BIP32-style path, e.g. 'm/0/7'. */
  derivationPath?: string;
  /**
   * Schemes with a presign phase (ECDSA): a presignature made by exactly these signers. With it, the
   * online sign is one broadcast round. It is consumed (marked used) before anything is sent.
   */
  presignature?: Presignature;
}

export interface PresignParams<Share extends KeyShare> {
  sessionId: string;
  share: Share;
  /** Exactly `threshold` parties, including this one. */
  signers: readonly PartyId[];
}

/**
 * A message-independent, single-use precomputation for one signer set. Opaque and secret; the
 * holder marks it consumed atomically on first use and every later use throws.
 */
export interface Presignature {
  readonly scheme: SchemeName;
  /** Unique id, the same at every signer (derived from the presign session). */
  readonly id: string;
  readonly partyId: PartyId;
  readonly signers: readonly PartyId[];
  readonly consumed: boolean;
}

export interface RefreshParams<Share extends KeyShare> {
  sessionId: string;
  share: Share;
}

export interface ReshareParams<Share extends KeyShare> {
  sessionId: string;
  partyId: PartyId;
  /** The old share, if this party holds one (an old-committee member). */
  share?: Share;
  /** Public info of the key being reshared (new parties know it from the coordinator). */
  info: PublicKeyInfo;
  /** Old-committee members that take part (at least old threshold of them). */
  oldParties: readonly PartyId[];
  newParties: readonly PartyId[];
  newThreshold: number;
}

export interface ThresholdScheme<Share extends KeyShare = KeyShare> {
  readonly name: SchemeName;
  dkg(params: DkgParams): ProtocolParty<Share>;
  sign(params: SignParams<Share>): ProtocolParty<SchemeSignature>;
  /** Message-independent precomputation (ECDSA only); absent for schemes without one. */
  presign?(params: PresignParams<Share>): ProtocolParty<Presignature>;
  exportPresignatureForStorage?(p: Presignature): Uint8Array;
  importPresignatureFromStorage?(bytes: Uint8Array): Presignature;
  refresh(params: RefreshParams<Share>): ProtocolParty<Share>;
  reshare(params: ReshareParams<Share>): ProtocolParty<Share>;
  /** Child public key at a non-hardened path (no secrets needed). */
  derivePublicKey(info: PublicKeyInfo, path: string): Uint8Array;
  /** Verify a signature with an independent single-key verifier. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: SchemeSignature): boolean;
  /** Explicit serialisation of a secret share for encrypted storage. Caller must encrypt and zero it. */
  exportShareForStorage(share: Share): Uint8Array;
  importShareFromStorage(bytes: Uint8Array): Share;
}

/** Canonical message (de)serialisation, shared by all schemes and the node transport. */
export function encodeProtocolMessage(m: ProtocolMessage): Uint8Array {
  const proto = new TextEncoder().encode(m.protocol);
  const sid = hexToBytesStrict(m.sessionId, 32, 'sessionId');
  if (proto.length > 255) throw new Error('protocol name too long');
  const out = new Uint8Array(1 + 1 + proto.length + 32 + 2 + 1 + 1 + 4 + m.payload.length);
  const dv = new DataView(out.buffer);
  let o = 0;
  out[o++] = m.v;
  out[o++] = proto.length;
  out.set(proto, o);
  o += proto.length;
  out.set(sid, o);
  o += 32;
  dv.setUint16(o, m.round);
  o += 2;
  out[o++] = m.from;
  out[o++] = m.to ?? 0;
  dv.setUint32(o, m.payload.length);
  o += 4;
  out.set(m.payload, o);
  return out;
}

export function decodeProtocolMessage(bytes: Uint8Array): ProtocolMessage {
  const fail = (why: string): never => {
    throw new Error(`protocol message: ${why}`);
  };
  if (bytes.length < 1 + 1 + 32 + 2 + 1 + 1 + 4) fail('too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const v = bytes[o++]!;
  if (v !== PROTOCOL_MESSAGE_VERSION) fail(`unsupported version ${v}`);
  const plen = bytes[o++]!;
  if (bytes.length < 2 + plen + 32 + 2 + 1 + 1 + 4) fail('too short');
  const protocol = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(o, o + plen));
  o += plen;
  const sessionId = bytesToHexLower(bytes.subarray(o, o + 32));
  o += 32;
  const round = dv.getUint16(o);
  o += 2;
  const from = bytes[o++]!;
  const toRaw = bytes[o++]!;
  const len = dv.getUint32(o);
  o += 4;
  if (bytes.length !== o + len) fail('length mismatch');
  if (from === 0) fail('sender 0');
  return {
    v: PROTOCOL_MESSAGE_VERSION,
    protocol,
    sessionId,
    round,
    from,
    to: toRaw === 0 ? null : toRaw,
    payload: bytes.slice(o, o + len),
  };
}

function bytesToHexLower(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function hexToBytesStrict(hex: string, len: number, what: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length !== len * 2 || !/^[0-9a-f]*$/.test(hex)) {
    throw new Error(`${what}: expected ${len} bytes of lowercase hex`);
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

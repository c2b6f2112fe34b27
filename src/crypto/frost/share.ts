// Secret state of the FROST layer: key shares and signing nonces. Secrets live in module-private
// WeakMaps (never on the object), so toString / JSON.stringify / util.inspect cannot reach them; the
// only way out is the explicit exportShareForStorage. Nonces are single-use and zeroed after use.
import { inspect } from 'node:util';
import type { KeyShare, PartyId, PublicKeyInfo, SchemeName } from '../threshold.ts';
import { ThresholdAbort } from '../threshold.ts';
import type { FrostSuite, GPoint } from './suites.ts';
import { decodeScalar, equalBytes, evalCommitments, suiteById, taggedHash } from './suites.ts';

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

const shareSecrets = new WeakMap<FrostKeyShare, Uint8Array>();

export class FrostKeyShare implements KeyShare {
  readonly scheme: SchemeName;
  readonly partyId: PartyId;
  readonly info: PublicKeyInfo;
  /** Wire id of the ciphersuite (see suites.ts). */
  readonly suiteId: number;
  /** Feldman commitments of the sharing polynomial; commitments[0] is the (normalised) group key. */
  readonly commitments: readonly Uint8Array[];
  /**
   * True for the output of an old-committee member that left in a reshare: it holds no secret and
   * only tells the caller that the reshare completed and the old share must now be deleted.
   */
  readonly retired: boolean;
  #points: GPoint[] | undefined;
  /** Memoised verifying shares (public, derived from the commitments only). */
  readonly #verifyingShares = new Map<PartyId, GPoint>();

  private constructor(
    suite: FrostSuite,
    partyId: PartyId,
    info: PublicKeyInfo,
    commitments: Uint8Array[],
    retired: boolean,
  ) {
    this.scheme = suite.scheme;
    this.suiteId = suite.id;
    this.partyId = partyId;
    this.info = Object.freeze({ ...info, parties: Object.freeze([...info.parties]) });
    this.commitments = Object.freeze(commitments.map((c) => c.slice()));
    this.retired = retired;
    Object.freeze(this);
  }

  /** Internal constructor; validates the share against the commitments (Feldman check). */
  static create(args: {
    suite: FrostSuite;
    partyId: PartyId;
    info: PublicKeyInfo;
    commitments: Uint8Array[];
    signingShare: bigint;
  }): FrostKeyShare {
    const { suite } = args;
    const s = new FrostKeyShare(suite, args.partyId, args.info, args.commitments, false);
    validatePublic(suite, s);
    const expected = evalCommitments(suite, s.points(), BigInt(args.partyId));
    const ok = args.signingShare !== 0n && suite.BASE.multiply(args.signingShare).equals(expected);
    if (!ok) {
      throw new Error('frost/share: signing share does not match the commitments');
    }
    shareSecrets.set(s, suite.Fn.toBytes(args.signingShare));
    return s;
  }

  static retiredShare(suite: FrostSuite, partyId: PartyId, info: PublicKeyInfo, commitments: Uint8Array[]) {
    return new FrostKeyShare(suite, partyId, info, commitments, true);
  }

  get suite(): FrostSuite {
    return suiteById(this.suiteId);
  }

  /** Decoded commitments (public). */
  points(): GPoint[] {
    if (!this.#points) this.#points = this.commitments.map((c) => this.suite.decodePoint(c, true));
    return this.#points;
  }

  /** Public verifying share of a party: s_j·G = Σ C_k · j^k. */
  verifyingShare(id: PartyId): GPoint {
    let v = this.#verifyingShares.get(id);
    if (v === undefined) {
      v = evalCommitments(this.suite, this.points(), BigInt(id));
      this.#verifyingShares.set(id, v);
    }
    return v;
  }

  /** Zeroes the secret; the share is unusable afterwards. */
  destroy(): void {
    shareSecrets.get(this)?.fill(0);
    shareSecrets.delete(this);
  }

  toJSON(): Record<string, unknown> {
    return {
      scheme: this.scheme,
      partyId: this.partyId,
      threshold: this.info.threshold,
      parties: this.info.parties,
      publicKey: hex(this.info.publicKey),
      retired: this.retired,
    };
  }

  toString(): string {
    return `FrostKeyShare(${this.scheme}, party ${this.partyId}, ${this.info.threshold}-of-${this.info.parties.length}, ${hex(this.info.publicKey)})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** The secret signing share as a scalar. Internal to src/crypto/frost. */
export function shareSecret(share: FrostKeyShare): bigint {
  const b = shareSecrets.get(share);
  if (!b) throw new Error('frost/share: share holds no secret (retired or destroyed)');
  return decodeScalar(share.suite, b);
}

function validatePublic(suite: FrostSuite, s: FrostKeyShare): void {
  const { info } = s;
  const ctx = 'frost/share';
  if (info.scheme !== suite.scheme) throw new Error(`${ctx}: scheme mismatch`);
  const parties = info.parties;
  if (parties.length < 2 || parties.length > 255) throw new Error(`${ctx}: 2..255 parties`);
  for (let i = 0; i < parties.length; i++) {
    const p = parties[i]!;
    if (!Number.isInteger(p) || p < 1 || p > 255) throw new Error(`${ctx}: bad party id ${p}`);
    if (i > 0 && p <= parties[i - 1]!) throw new Error(`${ctx}: parties must be strictly increasing`);
  }
  if (!parties.includes(s.partyId)) throw new Error(`${ctx}: party ${s.partyId} not in committee`);
  if (!Number.isInteger(info.threshold) || info.threshold < 2 || info.threshold > parties.length) {
    throw new Error(`${ctx}: threshold must be 2..n`);
  }
  if (s.commitments.length !== info.threshold)
    throw new Error(`${ctx}: expected ${info.threshold} commitments`);
  if (!(info.chainCode instanceof Uint8Array) || info.chainCode.length !== 32) {
    throw new Error(`${ctx}: chain code must be 32 bytes`);
  }
  const pts = s.points();
  const C0 = pts[0]!;
  if (suite.dkgNormalisation(C0) !== 1n) throw new Error(`${ctx}: group key not normalised`);
  if (!equalBytes(suite.encodePublicKey(C0), info.publicKey)) {
    throw new Error(`${ctx}: public key does not match commitments`);
  }
}

const STORAGE_VERSION = 1;

/** Explicit, versioned serialisation of a share (secret included). Caller encrypts and zeroes it. */
export function exportShare(share: FrostKeyShare): Uint8Array {
  const suite = share.suite;
  const secret = shareSecrets.get(share);
  if (!secret) throw new Error('frost/share: nothing to export (retired or destroyed share)');
  const { info } = share;
  const parts: number[] = [STORAGE_VERSION, suite.id, share.partyId, info.threshold, info.parties.length];
  const out = new Uint8Array(
    parts.length +
      info.parties.length +
      suite.publicKeyLen +
      32 +
      1 +
      share.commitments.length * suite.pointLen +
      suite.scalarLen,
  );
  let o = 0;
  for (const b of parts) out[o++] = b;
  for (const p of info.parties) out[o++] = p;
  out.set(info.publicKey, o);
  o += suite.publicKeyLen;
  out.set(info.chainCode, o);
  o += 32;
  out[o++] = share.commitments.length;
  for (const c of share.commitments) {
    out.set(c, o);
    o += c.length;
  }
  out.set(secret, o);
  // Integrity of the whole record (the chain code, say, is bound to nothing else). Not a MAC: the
  // caller's AES-GCM provides authenticity; this catches corruption and truncation.
  const sum = taggedHash('custos/frost/share-storage/v1', out);
  const full = new Uint8Array(out.length + 32);
  full.set(out);
  full.set(sum, out.length);
  out.fill(0);
  return full;
}

export function importShare(bytes: Uint8Array, expectedSuite?: FrostSuite): FrostKeyShare {
  const fail = (why: string): never => {
    throw new Error(`frost/share: import: ${why}`);
  };
  if (!(bytes instanceof Uint8Array) || bytes.length < 5) fail('too short');
  if (bytes[0] !== STORAGE_VERSION) fail(`unsupported version ${bytes[0]}`);
  let suite: FrostSuite;
  try {
    suite = suiteById(bytes[1]!);
  } catch {
    return fail('unknown suite');
  }
  if (expectedSuite && suite.id !== expectedSuite.id) fail('share belongs to another scheme');
  if (bytes.length < 37) fail('too short');
  const body = bytes.subarray(0, bytes.length - 32);
  if (!equalBytes(taggedHash('custos/frost/share-storage/v1', body), bytes.subarray(bytes.length - 32))) {
    fail('checksum mismatch');
  }
  bytes = body;
  const partyId = bytes[2]!;
  const threshold = bytes[3]!;
  const n = bytes[4]!;
  const need = 5 + n + suite.publicKeyLen + 32 + 1 + threshold * suite.pointLen + suite.scalarLen;
  if (bytes.length !== need) fail('length mismatch');
  let o = 5;
  const parties = [...bytes.subarray(o, o + n)];
  o += n;
  const publicKey = bytes.slice(o, o + suite.publicKeyLen);
  o += suite.publicKeyLen;
  const chainCode = bytes.slice(o, o + 32);
  o += 32;
  if (bytes[o++] !== threshold) fail('commitment count mismatch');
  const commitments: Uint8Array[] = [];
  for (let i = 0; i < threshold; i++) {
    commitments.push(bytes.slice(o, o + suite.pointLen));
    o += suite.pointLen;
  }
  let secret: bigint;
  try {
    secret = decodeScalar(suite, bytes.subarray(o, o + suite.scalarLen));
  } catch (e) {
    return fail((e as Error).message);
  }
  try {
    return FrostKeyShare.create({
      suite,
      partyId,
      info: { scheme: suite.scheme, threshold, parties, publicKey, chainCode },
      commitments,
      signingShare: secret,
    });
  } catch (e) {
    return fail((e as Error).message);
  }
}

// ---------------------------------------------------------------------------------------------------
// Signing nonces (RFC 9591 §5.1 commit): a pair of secret scalars and their public commitments.

interface NonceSecret {
  hiding: Uint8Array<ArrayBuffer>;
  binding: Uint8Array<ArrayBuffer>;
}
const nonceSecrets = new WeakMap<SigningNonce, NonceSecret>();

/**
 * One round-one commitment of one party for one key. Single-use: bound to the first signing session
 * that claims it (claimed nonces are never released for another session, even if that session aborts,
 * because its commitment was published), and zeroed once the signature share is computed.
 */
export class SigningNonce {
  readonly suiteId: number;
  readonly partyId: PartyId;
  /** Public key of the share it was made for (hex), to refuse use with another key. */
  readonly keyId: string;
  readonly hiding: Uint8Array<ArrayBuffer>;
  readonly binding: Uint8Array<ArrayBuffer>;
  #claimedBy: string | null = null;

  private constructor(
    share: FrostKeyShare,
    secret: NonceSecret,
    hiding: Uint8Array<ArrayBuffer>,
    binding: Uint8Array<ArrayBuffer>,
  ) {
    this.suiteId = share.suiteId;
    this.partyId = share.partyId;
    this.keyId = hex(share.info.publicKey);
    this.hiding = hiding;
    this.binding = binding;
    nonceSecrets.set(this, secret);
  }

  /** RFC 9591 §5.1 commit(), via noble. `randomness` only with allowInjectedRandomness (test vectors). */
  static commit(
    share: FrostKeyShare,
    opts?: { allowInjectedRandomness: true; randomness: [hiding: Uint8Array, binding: Uint8Array] },
  ): SigningNonce {
    const suite = share.suite;
    let rng: ((n?: number) => Uint8Array<ArrayBuffer>) | undefined;
    if (opts !== undefined) {
      if (opts.allowInjectedRandomness !== true)
        throw new Error('frost/nonce: injected randomness not allowed');
      const queue = opts.randomness.map((r) => Uint8Array.from(r));
      rng = (n?: number) => {
        const next = queue.shift();
        if (!next || (n !== undefined && next.length !== n))
          throw new Error('frost/nonce: randomness exhausted');
        return next;
      };
    }
    const secret = shareSecret(share);
    const pkg = suite.sign.commit(
      { identifier: suite.sign.Identifier.fromNumber(share.partyId), signingShare: suite.Fn.toBytes(secret) },
      rng,
    );
    return new SigningNonce(
      share,
      { hiding: pkg.nonces.hiding, binding: pkg.nonces.binding },
      pkg.commitments.hiding,
      pkg.commitments.binding,
    );
  }

  /** True once any session has claimed it. */
  get consumed(): boolean {
    return this.#claimedBy !== null || !nonceSecrets.has(this);
  }

  /** Binds the nonce to a session; a second claim (any session) is refused. */
  claim(protocol: string, sessionId: string): void {
    if (this.consumed) {
      throw new ThresholdAbort({
        protocol,
        round: 1,
        culprit: null,
        reason: 'consumed',
        message: 'signing nonce already consumed',
      });
    }
    this.#claimedBy = sessionId;
  }

  /** The secret nonce pair for signShare; the caller zeroes it via destroy() right after. */
  secretFor(protocol: string, sessionId: string): NonceSecret {
    const s = nonceSecrets.get(this);
    if (this.#claimedBy !== sessionId || !s) {
      throw new ThresholdAbort({
        protocol,
        round: 2,
        culprit: null,
        reason: 'consumed',
        message: 'signing nonce consumed or claimed by another session',
      });
    }
    return s;
  }

  /** Zeroes and forgets the secret nonces. */
  destroy(): void {
    const s = nonceSecrets.get(this);
    if (s) {
      s.hiding.fill(0);
      s.binding.fill(0);
    }
    nonceSecrets.delete(this);
    if (this.#claimedBy === null) this.#claimedBy = '';
  }

  toJSON(): Record<string, unknown> {
    return {
      partyId: this.partyId,
      hiding: hex(this.hiding),
      binding: hex(this.binding),
      consumed: this.consumed,
    };
  }

  toString(): string {
    return `SigningNonce(party ${this.partyId}, ${this.consumed ? 'consumed' : 'fresh'})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** Test hook: whether the nonce buffers handed to signShare are all zero now. */
export function nonceBuffersForTest(n: SigningNonce): NonceSecret | undefined {
  return nonceSecrets.get(n);
}

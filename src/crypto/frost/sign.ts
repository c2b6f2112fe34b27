// FROST signing (RFC 9591 §5) as a two-round state machine over noble's commit / signShare /
// verifyShare / aggregate:
//   1. broadcast: context digest (session, key, signer set, message) + the party's nonce commitments
//   2. broadcast: digest of the commitment list the party signed over + its signature share
// Every signer aggregates and verifies the signature (noble's check, then an independent single-key
// verifier) before releasing it. HD paths and Taproot tweaks are affine maps of the shared secret
// (s -> a·s + b), applied to every share and to the public commitments.

import type { FrostPublic, NonceCommitments } from '@noble/curves/abstract/frost.js';
import { schnorr } from '@noble/curves/secp256k1.js';
import type { PartyId, SchemeSignature, SignParams, StepResult } from '../threshold.ts';
import { idHex } from './dkg.ts';
import { checkPartyList, FrostParty } from './party.ts';
import { FrostKeyShare, SigningNonce, shareSecret } from './share.ts';
import type { FrostSuite, GPoint } from './suites.ts';
import { bip340Suite, concat, mulBase, taggedHash } from './suites.ts';
import type { Bytes, Decoded } from './wire.ts';
import { KIND } from './wire.ts';

export interface FrostSignParams extends SignParams<FrostKeyShare> {
  /** A nonce made in advance with commitNonce() (RFC 9591 §5.1 preprocessing). Consumed by this session. */
  nonce?: SigningNonce;
  /**
   * BIP340 only: sign for a Taproot output key (BIP341 key path). The internal key is the (derived) key;
   * the output key is internal + TapTweak(internal.x || merkleRoot)·G. An empty merkleRoot is BIP86.
   */
  taproot?: { merkleRoot: Uint8Array };
}

/** The key a session signs with: secret = a·s + b, commitments mapped accordingly. */
export interface SigningKey {
  a: bigint;
  b: bigint;
  /** b·G, computed once per session key. */
  bG: GPoint;
  point: GPoint;
  commitments: GPoint[];
  signingPublicKey: Uint8Array;
}

/** Derivation path and optional Taproot tweak as an affine map of the root sharing (BIP32, BIP341). */
export function signingKey(
  suite: FrostSuite,
  C: readonly GPoint[],
  chainCode: Uint8Array,
  path: string | undefined,
  taproot: { merkleRoot: Uint8Array } | undefined,
): SigningKey {
  const Fn = suite.Fn;
  let a = 1n;
  let b = 0n;
  let P = C[0]!;
  if (path !== undefined && path !== '' && path !== 'm') {
    const d = suite.derive(P, chainCode, path);
    b = d.tweak;
    P = d.point;
  }
  if (taproot !== undefined) {
    if (suite.id !== bip340Suite.id) throw new Error(`${suite.label}/sign: taproot is for BIP340 keys only`);
    const mr = taproot.merkleRoot;
    if (!(mr instanceof Uint8Array) || (mr.length !== 0 && mr.length !== 32)) {
      throw new Error(`${suite.label}/sign: taproot.merkleRoot must be 0 or 32 bytes`);
    }
    // BIP341 taproot_tweak_seckey: negate to even Y, then add t = hashTapTweak(x(P) || merkleRoot).
    if ((P.toBytes(true)[0] ?? 0) !== 0x02) {
      a = Fn.neg(a);
      b = Fn.neg(b);
      P = P.negate();
    }
    const t = bytesToBigIntBE(schnorr.utils.taggedHash('TapTweak', P.toBytes(true).slice(1), mr));
    if (t >= Fn.ORDER) throw new Error(`${suite.label}/sign: invalid TapTweak`);
    b = Fn.add(b, t);
    P = P.add(mulBase(suite, t));
  }
  const bG = mulBase(suite, b);
  const commitments = C.map((c, k) => {
    const scaled = a === 1n ? c : c.negate();
    return k === 0 ? scaled.add(bG) : scaled;
  });
  if (!commitments[0]!.equals(P)) throw new Error(`${suite.label}/sign: derived key mismatch`);
  return { a, b, bG, point: P, commitments, signingPublicKey: suite.encodePublicKey(P) };
}

function bytesToBigIntBE(b: Uint8Array): bigint {
  let x = 0n;
  for (const v of b) x = (x << 8n) | BigInt(v);
  return x;
}

export class FrostSignParty extends FrostParty<SchemeSignature> {
  readonly #share: FrostKeyShare;
  readonly #signers: PartyId[];
  readonly #message: Uint8Array;
  readonly #path: string | undefined;
  readonly #taproot: { merkleRoot: Uint8Array } | undefined;
  #nonce: SigningNonce | undefined;
  #key: SigningKey | undefined;
  #context: Uint8Array | undefined;
  #pub: FrostPublic | undefined;
  #commitmentList: NonceCommitments[] | undefined;
  #listDigest: Uint8Array | undefined;
  #ownShare: Bytes | undefined;

  constructor(suite: FrostSuite, params: FrostSignParams) {
    const share = params.share;
    if (!(share instanceof FrostKeyShare))
      throw new Error(`${suite.label}/sign: share must be a FrostKeyShare`);
    super(suite, `${suite.label}/sign`, params.sessionId, share.partyId);
    const ctx = this.protocol;
    if (share.suiteId !== suite.id) throw new Error(`${ctx}: share belongs to another scheme`);
    if (share.retired) throw new Error(`${ctx}: share is retired`);
    this.#share = share;
    this.#signers = checkPartyList(ctx, 'signers', params.signers);
    if (this.#signers.length !== share.info.threshold) {
      throw new Error(
        `${ctx}: exactly ${share.info.threshold} signers required, got ${this.#signers.length}`,
      );
    }
    for (const s of this.#signers) {
      if (!share.info.parties.includes(s)) throw new Error(`${ctx}: signer ${s} not in committee`);
    }
    if (!this.#signers.includes(share.partyId)) throw new Error(`${ctx}: this party is not a signer`);
    if (!(params.message instanceof Uint8Array)) throw new Error(`${ctx}: message must be bytes`);
    this.#message = params.message.slice();
    this.#path = params.derivationPath;
    this.#taproot = params.taproot;
    if (params.presignature !== undefined) throw new Error(`${ctx}: FROST has no presignatures; pass nonce`);
    if (params.nonce !== undefined) {
      const n = params.nonce;
      if (!(n instanceof SigningNonce)) throw new Error(`${ctx}: nonce must be a SigningNonce`);
      if (n.suiteId !== suite.id || n.partyId !== share.partyId)
        throw new Error(`${ctx}: nonce made for another party`);
      if (n.keyId !== Buffer.from(share.info.publicKey).toString('hex')) {
        throw new Error(`${ctx}: nonce made for another key`);
      }
      this.#nonce = n;
    }
  }

  protected onStart(): StepResult<SchemeSignature> {
    const { suite } = this;
    const share = this.#share;
    this.#key = signingKey(suite, share.points(), share.info.chainCode, this.#path, this.#taproot);
    const nonce = this.#nonce ?? SigningNonce.commit(share);
    this.#nonce = nonce;
    // RFC 9591 §5.1: commitments are single-use; bind this one to this session before publishing it.
    nonce.claim(this.protocol, this.sessionId);
    // Our own commitments are k·B (made by noble's commit): skip their subgroup check in this session.
    suite.adoptOwnPoint(nonce.hiding);
    suite.adoptOwnPoint(nonce.binding);
    this.#context = taggedHash(
      'custos/frost/sign/context/v1',
      Uint8Array.of(suite.id),
      this.sid,
      share.info.publicKey,
      Uint8Array.of(share.info.threshold),
      Uint8Array.from(this.#signers),
      this.#key.signingPublicKey,
      this.#message,
    );
    this.expectNext(KIND.signCommit, this.#signers, true);
    return {
      outgoing: [
        this.message(KIND.signCommit, null, {
          context: this.#context,
          hiding: nonce.hiding,
          binding: nonce.binding,
        }),
      ],
    };
  }

  protected onReceive(round: number, msgs: Map<PartyId, Decoded>): StepResult<SchemeSignature> {
    return round === 1 ? this.#round1Received(msgs) : this.#round2Received(msgs);
  }

  #round1Received(msgs: Map<PartyId, Decoded>): StepResult<SchemeSignature> {
    const { suite } = this;
    const share = this.#share;
    const key = this.#key!;
    const nonce = this.#nonce!;
    for (const [from, d] of msgs) {
      if (!equal(d.bytes['context']!, this.#context!)) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: disagrees on message, signer set or key`,
        });
      }
    }
    // RFC 9591 §5.2: commitment_list sorted by identifier.
    const list: NonceCommitments[] = this.#signers.map((id) => {
      if (id === this.partyId)
        return { identifier: idHex(suite, id), hiding: nonce.hiding, binding: nonce.binding };
      const d = msgs.get(id)!;
      return { identifier: idHex(suite, id), hiding: d.bytes['hiding']!, binding: d.bytes['binding']! };
    });
    const verifyingShares: Record<string, Bytes> = {};
    const bG = key.bG;
    for (const id of this.#signers) {
      const V = share.verifyingShare(id);
      verifyingShares[idHex(suite, id)] = asBytes((key.a === 1n ? V : V.negate()).add(bG).toBytes(true));
    }
    this.#pub = {
      signers: { min: share.info.threshold, max: share.info.parties.length },
      commitments: key.commitments.map((c) => asBytes(c.toBytes(true))),
      verifyingShares,
    };
    this.#commitmentList = list;
    this.#listDigest = taggedHash(
      'custos/frost/sign/commitments/v1',
      this.sid,
      ...this.#signers.map((id, i) => concat(Uint8Array.of(id), list[i]!.hiding, list[i]!.binding)),
    );
    const Fn = suite.Fn;
    const secretBytes = Fn.toBytes(Fn.add(Fn.mul(key.a, shareSecret(share)), key.b));
    let sigShare: Uint8Array;
    try {
      const nonces = nonce.secretFor(this.protocol, this.sessionId);
      // noble zeroes the nonce buffers after computing the share; destroy() below forgets them.
      sigShare = suite.sign.signShare(
        { identifier: idHex(suite, this.partyId), signingShare: secretBytes },
        this.#pub,
        nonces,
        list,
        this.#message,
      );
    } finally {
      secretBytes.fill(0);
      nonce.destroy();
    }
    this.#ownShare = asBytes(sigShare);
    this.expectNext(KIND.signShare, this.#signers, true);
    return {
      outgoing: [
        this.message(KIND.signShare, null, { commitmentList: this.#listDigest, signatureShare: sigShare }),
      ],
    };
  }

  #round2Received(msgs: Map<PartyId, Decoded>): StepResult<SchemeSignature> {
    const { suite } = this;
    const pub = this.#pub!;
    const list = this.#commitmentList!;
    for (const [from, d] of msgs) {
      if (!equal(d.bytes['commitmentList']!, this.#listDigest!)) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: signed over a different commitment list (equivocation)`,
        });
      }
    }
    const shares: Record<string, Bytes> = { [idHex(suite, this.partyId)]: this.#ownShare! };
    for (const [from, d] of msgs) shares[idHex(suite, from)] = d.bytes['signatureShare']!;
    let signature: Uint8Array;
    try {
      signature = suite.sign.aggregate(pub, list, this.#message, shares);
    } catch (e) {
      // RFC 9591 §5.4: identify the misbehaving signer by verifying each share.
      for (const [from, d] of msgs) {
        const id = idHex(suite, from);
        if (!suite.sign.verifyShare(pub, list, this.#message, id, d.bytes['signatureShare']!)) {
          this.abort({
            culprit: from,
            reason: 'invalid-signature',
            message: `party ${from}: invalid signature share`,
          });
        }
      }
      this.abort({
        culprit: null,
        reason: 'invalid-signature',
        message: `aggregation failed: ${(e as Error).message}`,
      });
    }
    const signingPublicKey = this.#key!.signingPublicKey;
    if (
      signature.length !== suite.signatureLen ||
      !suite.verify(signingPublicKey, this.#message, signature)
    ) {
      this.abort({
        culprit: null,
        reason: 'invalid-signature',
        message: 'aggregate signature does not verify',
      });
    }
    return this.finish({ signature, signingPublicKey });
  }

  protected wipe(): void {
    // A nonce claimed by this session is never reusable, whether or not round 2 happened.
    if (this.#nonce?.consumed) this.#nonce.destroy();
    this.#ownShare = undefined;
  }
}

function asBytes(b: Uint8Array): Bytes {
  return b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
    ? (b as Bytes)
    : Uint8Array.from(b);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

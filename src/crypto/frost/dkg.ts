// FROST distributed key generation: noble's Pedersen DKG with proofs of knowledge (the frost-rs
// split-round API; RFC 9591 leaves DKG out of scope), wrapped in three rounds:
//   1. broadcast: VSS commitments, proof of knowledge of the constant term, commitment to a chain-code seed
//   2. point-to-point: the recipient's share of the sender's polynomial, and the chain-code seed
//   3. broadcast: a digest of the resulting public key package; output only if every party agrees
// What noble leaves to us: attributing a failed proof or share to its sender, the chain code, even-Y
// normalisation for BIP340, and the final agreement round (catches equivocated broadcasts).
import { randomBytes } from 'node:crypto';
import type { DKG_Round1, DKG_Secret } from '@noble/curves/abstract/frost.js';
import type { DkgParams, PartyId, PublicKeyInfo, StepResult } from '../threshold.ts';
import { checkPartyList, FrostParty } from './party.ts';
import { FrostKeyShare } from './share.ts';
import type { FrostSuite, GPoint } from './suites.ts';
import { concat, decodeScalar, equalBytes, evalCommitments, taggedHash } from './suites.ts';
import type { Decoded } from './wire.ts';
import { KIND } from './wire.ts';

export function idHex(suite: FrostSuite, id: PartyId): string {
  return suite.sign.Identifier.fromNumber(id);
}

/** Digest of a public key package, compared in the last round of DKG and reshare. */
export function confirmDigest(
  suite: FrostSuite,
  protocol: string,
  sid: Uint8Array,
  info: PublicKeyInfo,
  commitments: readonly Uint8Array[],
): Uint8Array {
  return taggedHash(
    'custos/frost/confirm/v1',
    Uint8Array.of(suite.id),
    new TextEncoder().encode(protocol),
    sid,
    Uint8Array.of(info.threshold),
    Uint8Array.from(info.parties),
    info.publicKey,
    info.chainCode,
    ...commitments,
  );
}

export class FrostDkgParty extends FrostParty<FrostKeyShare> {
  readonly #parties: PartyId[];
  readonly #threshold: number;
  #secret: DKG_Secret | undefined;
  #seed: Uint8Array | undefined;
  #round1 = new Map<PartyId, DKG_Round1>();
  #seedCommitments = new Map<PartyId, Uint8Array>();
  #result: { share: FrostKeyShare; digest: Uint8Array } | undefined;

  constructor(suite: FrostSuite, params: DkgParams) {
    super(suite, `${suite.label}/dkg`, params.sessionId, params.partyId);
    const ctx = this.protocol;
    this.#parties = checkPartyList(ctx, 'parties', params.parties);
    const n = this.#parties.length;
    if (n < 2) throw new Error(`${ctx}: at least 2 parties`);
    if (!this.#parties.includes(this.partyId))
      throw new Error(`${ctx}: party ${this.partyId} not in parties`);
    // noble (like frost-rs) refuses threshold 1: that is single-key signing, not FROST.
    if (!Number.isInteger(params.threshold) || params.threshold < 2 || params.threshold > n) {
      throw new Error(`${ctx}: threshold must be 2..${n}`);
    }
    this.#threshold = params.threshold;
  }

  protected onStart(): StepResult<FrostKeyShare> {
    const { suite } = this;
    const r1 = suite.dkg.DKG.round1(idHex(suite, this.partyId), {
      min: this.#threshold,
      max: this.#parties.length,
    });
    this.#secret = r1.secret;
    this.#seed = new Uint8Array(randomBytes(32));
    this.expectNext(KIND.dkgCommit, this.#parties, true);
    return {
      outgoing: [
        this.message(KIND.dkgCommit, null, {
          commitments: r1.public.commitment,
          proofOfKnowledge: r1.public.proofOfKnowledge,
          chainCodeCommitment: this.#seedCommitment(this.partyId, this.#seed),
        }),
      ],
    };
  }

  protected onReceive(round: number, msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    if (round === 1) return this.#round1Received(msgs);
    if (round === 2) return this.#round2Received(msgs);
    return this.#round3Received(msgs);
  }

  #round1Received(msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    const { suite } = this;
    for (const [from, d] of msgs) {
      const c = d.pointLists['commitments']!;
      if (c.bytes.length !== this.#threshold) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: wrong commitment count`,
        });
      }
      this.#round1.set(from, {
        identifier: idHex(suite, from),
        commitment: c.bytes,
        proofOfKnowledge: d.bytes['proofOfKnowledge']!,
      });
      this.#seedCommitments.set(from, d.bytes['chainCodeCommitment']!);
    }
    let out: Record<string, { signingShare: Uint8Array }>;
    try {
      out = suite.dkg.DKG.round2(this.#secret!, [...this.#round1.values()]);
    } catch (e) {
      // noble checks the whole batch; find which proof failed (RFC 9591-style PoK, frost-rs DKG part 2).
      for (const [from, d] of msgs) {
        if (!this.#pokValid(from, d)) {
          this.abort({
            culprit: from,
            reason: 'invalid-proof',
            message: `party ${from}: bad proof of knowledge`,
          });
        }
      }
      throw e;
    }
    this.expectNext(KIND.dkgShare, this.#parties, false);
    const outgoing = this.#parties
      .filter((j) => j !== this.partyId)
      .map((j) =>
        this.message(KIND.dkgShare, j, {
          signingShare: out[idHex(suite, j)]!.signingShare,
          chainCodeSeed: this.#seed!,
        }),
      );
    return { outgoing };
  }

  #round2Received(msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    const { suite } = this;
    const seeds = new Map<PartyId, Uint8Array>([[this.partyId, this.#seed!]]);
    for (const [from, d] of msgs) {
      const seed = d.bytes['chainCodeSeed']!;
      if (!equalBytes(this.#seedCommitment(from, seed), this.#seedCommitments.get(from)!)) {
        this.abort({
          culprit: from,
          reason: 'invalid-proof',
          message: `party ${from}: chain-code seed does not open`,
        });
      }
      seeds.set(from, seed);
    }
    let key: ReturnType<FrostSuite['dkg']['DKG']['round3']>;
    try {
      key = suite.dkg.DKG.round3(
        this.#secret!,
        [...this.#round1.values()],
        [...msgs].map(([from, d]) => ({
          identifier: idHex(suite, from),
          signingShare: d.bytes['signingShare']!,
        })),
      );
    } catch (e) {
      // RFC 9591 App. C.2 vss_verify, per sender, to name the one whose share is wrong.
      for (const [from, d] of msgs) {
        const C = this.#round1.get(from)!.commitment.map((b) => suite.decodePoint(b));
        const s = d.scalars['signingShare']!;
        const expected = evalCommitments(suite, C, BigInt(this.partyId));
        if (s === 0n || !suite.BASE.multiply(s).equals(expected)) {
          this.abort({
            culprit: from,
            reason: 'invalid-share',
            message: `party ${from}: share fails the VSS check`,
          });
        }
      }
      throw e;
    }
    // BIP340 keys are x-only: negate the whole sharing when the group key has odd Y, so that
    // info.publicKey (x-only) and the BIP32 root 02||x describe the same point as the shares.
    const sign = suite.dkgNormalisation(suite.decodePoint(key.public.commitments[0]!));
    const Fn = suite.Fn;
    const commitments = key.public.commitments.map((b) => {
      const p = suite.decodePoint(b);
      return sign === 1n ? b : p.negate().toBytes(true);
    });
    let s = decodeScalar(suite, key.secret.signingShare);
    key.secret.signingShare.fill(0);
    if (sign === -1n) s = Fn.neg(s);
    const C0: GPoint = suite.decodePoint(commitments[0]!);
    const chainCode = taggedHash(
      'custos/frost/dkg/chaincode/v1',
      this.sid,
      ...this.#parties.map((p) => concat(Uint8Array.of(p), seeds.get(p)!)),
    );
    const info: PublicKeyInfo = {
      scheme: suite.scheme,
      threshold: this.#threshold,
      parties: this.#parties,
      publicKey: suite.encodePublicKey(C0),
      chainCode,
    };
    const share = FrostKeyShare.create({ suite, partyId: this.partyId, info, commitments, signingShare: s });
    s = 0n;
    const digest = confirmDigest(suite, this.protocol, this.sid, info, commitments);
    this.#result = { share, digest };
    this.expectNext(KIND.dkgConfirm, this.#parties, true);
    return { outgoing: [this.message(KIND.dkgConfirm, null, { transcript: digest })] };
  }

  #round3Received(msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    const r = this.#result!;
    for (const [from, d] of msgs) {
      if (!equalBytes(d.bytes['transcript']!, r.digest)) {
        this.abort({
          culprit: from,
          reason: 'invalid-proof',
          message: `party ${from}: disagrees on the resulting key package (equivocation)`,
        });
      }
    }
    this.#result = undefined;
    return this.finish(r.share);
  }

  #seedCommitment(from: PartyId, seed: Uint8Array): Uint8Array {
    return taggedHash('custos/frost/dkg/chaincode-commit/v1', this.sid, Uint8Array.of(from), seed);
  }

  /** noble's PoK check (challenge = H_dkg(id || C_0 || R); R == z·G - c·C_0), for attribution only. */
  #pokValid(from: PartyId, d: Decoded): boolean {
    const { suite } = this;
    try {
      const proof = d.bytes['proofOfKnowledge']!;
      const Rb = proof.subarray(0, suite.pointLen);
      const R = suite.decodePoint(Rb);
      const z = decodeScalar(suite, proof.subarray(suite.pointLen));
      const C0 = d.pointLists['commitments']!.points[0]!;
      const c = suite.hashDkg(concat(suite.Fn.toBytes(BigInt(from)), C0.toBytes(true), Rb));
      const zG = z === 0n ? suite.ZERO : suite.BASE.multiplyUnsafe(z);
      return R.equals(zG.subtract(c === 0n ? suite.ZERO : C0.multiplyUnsafe(c)));
    } catch {
      return false;
    }
  }

  protected wipe(): void {
    if (this.#secret) {
      try {
        this.suite.dkg.DKG.clean(this.#secret);
      } catch {
        // already consumed by round3
      }
      this.#secret = undefined;
    }
    this.#seed?.fill(0);
    this.#result?.share.destroy();
    this.#result = undefined;
  }
}

// Resharing and refresh of a FROST key without changing the group public key (noble has neither).
// Method: each participating old party i turns its share into an additive share w_i = λ_i·s_i of the
// group secret (λ_i: Lagrange coefficient at 0 over the old participants) and re-deals w_i with a fresh
// random polynomial g_i of the new degree (Feldman VSS, as in Desmedt–Jajodia / Herzberg et al.):
//   1. broadcast (old parties): context digest, the old commitments, commitments G_i,k = g_i,k·G
//      checked by everyone: G_i,0 == λ_i·V_i (V_i: i's old verifying share) and Σ G_i,0 == group key
//   2. point-to-point (old -> new): g_i(j), checked against G_i (vss_verify)
//   3. broadcast (everyone): digest of the new public key package; output only if all agree
// New share s'_j = Σ_i g_i(j); new commitments C'_k = Σ_i G_i,k. Refresh is the same protocol with
// old = new = every party and the same threshold: the new polynomial is independent of the old one,
// so old and new shares do not combine.
import type { PartyId, PublicKeyInfo, ReshareParams, StepResult } from '../threshold.ts';
import { confirmDigest } from './dkg.ts';
import { checkPartyList, FrostParty } from './party.ts';
import { FrostKeyShare, shareSecret } from './share.ts';
import type { FrostSuite, GPoint } from './suites.ts';
import { equalBytes, evalCommitments, lagrangeAtZero, taggedHash } from './suites.ts';
import type { Decoded } from './wire.ts';
import { KIND } from './wire.ts';

export class FrostReshareParty extends FrostParty<FrostKeyShare> {
  readonly #info: PublicKeyInfo;
  readonly #share: FrostKeyShare | undefined;
  readonly #old: PartyId[];
  readonly #new: PartyId[];
  readonly #all: PartyId[];
  readonly #t: number;
  readonly #groupKey: GPoint;
  #context: Uint8Array | undefined;
  #coeffs: bigint[] | undefined;
  #deals = new Map<PartyId, GPoint[]>();
  #newCommitments: GPoint[] | undefined;
  #result: { share: FrostKeyShare; digest: Uint8Array } | undefined;

  constructor(
    suite: FrostSuite,
    params: ReshareParams<FrostKeyShare>,
    kind: 'reshare' | 'refresh' = 'reshare',
  ) {
    super(suite, `${suite.label}/${kind}`, params.sessionId, params.partyId);
    const ctx = this.protocol;
    const info = params.info;
    if (!info || info.scheme !== suite.scheme) throw new Error(`${ctx}: info is for another scheme`);
    if (!(info.publicKey instanceof Uint8Array) || info.publicKey.length !== suite.publicKeyLen) {
      throw new Error(`${ctx}: bad info.publicKey`);
    }
    if (!(info.chainCode instanceof Uint8Array) || info.chainCode.length !== 32) {
      throw new Error(`${ctx}: bad info.chainCode`);
    }
    this.#groupKey = suite.decodePublicKey(info.publicKey);
    const committee = checkPartyList(ctx, 'info.parties', info.parties);
    this.#info = { ...info, parties: committee };
    this.#old = checkPartyList(ctx, 'oldParties', params.oldParties);
    for (const p of this.#old)
      if (!committee.includes(p)) throw new Error(`${ctx}: old party ${p} not in committee`);
    if (this.#old.length < info.threshold)
      throw new Error(`${ctx}: at least ${info.threshold} old parties needed`);
    this.#new = checkPartyList(ctx, 'newParties', params.newParties);
    if (this.#new.length < 2) throw new Error(`${ctx}: at least 2 new parties`);
    if (
      !Number.isInteger(params.newThreshold) ||
      params.newThreshold < 2 ||
      params.newThreshold > this.#new.length
    ) {
      throw new Error(`${ctx}: newThreshold must be 2..${this.#new.length}`);
    }
    this.#t = params.newThreshold;
    this.#all = checkPartyList(ctx, 'participants', [...new Set([...this.#old, ...this.#new])]);
    if (!this.#all.includes(this.partyId)) throw new Error(`${ctx}: party ${this.partyId} takes no part`);
    if (this.#old.includes(this.partyId)) {
      const share = params.share;
      if (!(share instanceof FrostKeyShare) || share.retired)
        throw new Error(`${ctx}: old party needs its share`);
      if (share.suiteId !== suite.id || share.partyId !== this.partyId)
        throw new Error(`${ctx}: share mismatch`);
      if (
        !equalBytes(share.info.publicKey, info.publicKey) ||
        share.info.threshold !== info.threshold ||
        share.info.parties.join() !== committee.join()
      ) {
        throw new Error(`${ctx}: share belongs to another key`);
      }
      this.#share = share;
    } else if (params.share !== undefined) {
      throw new Error(`${ctx}: party ${this.partyId} is not an old participant but was given a share`);
    }
  }

  protected onStart(): StepResult<FrostKeyShare> {
    const { suite } = this;
    const info = this.#info;
    this.#context = taggedHash(
      'custos/frost/reshare/context/v1',
      Uint8Array.of(suite.id),
      new TextEncoder().encode(this.protocol),
      this.sid,
      info.publicKey,
      info.chainCode,
      Uint8Array.of(info.threshold),
      Uint8Array.from(info.parties),
      Uint8Array.from(this.#old),
      Uint8Array.from(this.#new),
      Uint8Array.of(this.#t),
    );
    this.expectNext(KIND.reshareDeal, this.#old, true);
    const share = this.#share;
    if (!share) return { outgoing: [] };
    const Fn = suite.Fn;
    const lambda = lagrangeAtZero(suite, this.#old.map(BigInt), BigInt(this.partyId));
    const coeffs = [Fn.mul(lambda, shareSecret(share))];
    for (let k = 1; k < this.#t; k++) coeffs.push(randomScalar(suite));
    this.#coeffs = coeffs;
    const G = coeffs.map((c) => suite.BASE.multiply(c));
    this.#deals.set(this.partyId, G);
    return {
      outgoing: [
        this.message(KIND.reshareDeal, null, {
          context: this.#context,
          oldCommitments: [...share.commitments],
          commitments: G.map((p) => p.toBytes(true)),
        }),
      ],
    };
  }

  protected onReceive(round: number, msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    if (round === 1) return this.#dealsReceived(msgs);
    if (round === 2) return this.#sharesReceived(msgs);
    return this.#confirmReceived(msgs);
  }

  #dealsReceived(msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    const { suite } = this;
    for (const [from, d] of msgs) {
      if (!equalBytes(d.bytes['context']!, this.#context!)) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: disagrees on reshare parameters`,
        });
      }
      if (d.pointLists['commitments']!.points.length !== this.#t) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: wrong commitment count`,
        });
      }
      if (d.pointLists['oldCommitments']!.points.length !== this.#info.threshold) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: wrong old commitment count`,
        });
      }
    }
    const oldC = this.#oldCommitments(msgs);
    // G_i,0 must be λ_i·V_i: the dealer re-shares exactly its own Lagrange-weighted share.
    const xs = this.#old.map(BigInt);
    for (const [from, d] of msgs) {
      const G = d.pointLists['commitments']!.points;
      const expected = evalCommitments(suite, oldC, BigInt(from)).multiplyUnsafe(
        lagrangeAtZero(suite, xs, BigInt(from)),
      );
      if (!G[0]!.equals(expected)) {
        this.abort({
          culprit: from,
          reason: 'invalid-share',
          message: `party ${from}: re-dealt a different secret`,
        });
      }
      this.#deals.set(from, G);
    }
    const newC: GPoint[] = [];
    for (let k = 0; k < this.#t; k++) {
      let acc = suite.ZERO;
      for (const p of this.#old) acc = acc.add(this.#deals.get(p)![k]!);
      newC.push(acc);
    }
    if (!newC[0]!.equals(this.#groupKey)) {
      this.abort({
        culprit: null,
        reason: 'invalid-share',
        message: 're-dealt secrets do not sum to the group key',
      });
    }
    this.#newCommitments = newC;
    const amNew = this.#new.includes(this.partyId);
    this.expectNext(KIND.reshareShare, amNew ? this.#old : [], false);
    const outgoing = [];
    if (this.#coeffs) {
      for (const j of this.#new) {
        if (j === this.partyId) continue;
        outgoing.push(
          this.message(KIND.reshareShare, j, { share: suite.Fn.toBytes(this.#evalPoly(BigInt(j))) }),
        );
      }
    }
    return { outgoing };
  }

  #sharesReceived(msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    const { suite } = this;
    const Fn = suite.Fn;
    const me = BigInt(this.partyId);
    const newC = this.#newCommitments!;
    const commitmentBytes = newC.map((p) => p.toBytes(true));
    const info: PublicKeyInfo = {
      scheme: suite.scheme,
      threshold: this.#t,
      parties: this.#new,
      publicKey: this.#info.publicKey,
      chainCode: this.#info.chainCode,
    };
    let share: FrostKeyShare;
    if (this.#new.includes(this.partyId)) {
      let s = this.#coeffs ? this.#evalPoly(me) : 0n;
      for (const [from, d] of msgs) {
        const v = d.scalars['share']!;
        // RFC 9591 App. C.2 vss_verify against the dealer's commitments.
        const expected = evalCommitments(suite, this.#deals.get(from)!, me);
        if (!(v === 0n ? suite.ZERO : suite.BASE.multiply(v)).equals(expected)) {
          this.abort({
            culprit: from,
            reason: 'invalid-share',
            message: `party ${from}: share fails the VSS check`,
          });
        }
        s = Fn.add(s, v);
      }
      share = FrostKeyShare.create({
        suite,
        partyId: this.partyId,
        info,
        commitments: commitmentBytes,
        signingShare: s,
      });
      s = 0n;
    } else {
      share = FrostKeyShare.retiredShare(suite, this.partyId, info, commitmentBytes);
    }
    this.#wipeCoeffs();
    const digest = confirmDigest(suite, this.protocol, this.sid, info, commitmentBytes);
    this.#result = { share, digest };
    this.expectNext(KIND.reshareConfirm, this.#all, true);
    return { outgoing: [this.message(KIND.reshareConfirm, null, { transcript: digest })] };
  }

  #confirmReceived(msgs: Map<PartyId, Decoded>): StepResult<FrostKeyShare> {
    const r = this.#result!;
    for (const [from, d] of msgs) {
      if (!equalBytes(d.bytes['transcript']!, r.digest)) {
        this.abort({
          culprit: from,
          reason: 'invalid-proof',
          message: `party ${from}: disagrees on the new key package (equivocation)`,
        });
      }
    }
    this.#result = undefined;
    return this.finish(r.share);
  }

  /**
   * The old commitments: our own copy when we hold an old share; otherwise the version a strict
   * majority of dealers sent (a dealer sending another one is named), which must match the group key.
   */
  #oldCommitments(msgs: Map<PartyId, Decoded>): GPoint[] {
    const key = (d: Decoded) => Buffer.concat(d.pointLists['oldCommitments']!.bytes).toString('hex');
    let refHex: string;
    let ref: GPoint[];
    if (this.#share) {
      ref = this.#share.points();
      refHex = Buffer.concat(this.#share.commitments).toString('hex');
    } else {
      const counts = new Map<string, number>();
      for (const d of msgs.values()) counts.set(key(d), (counts.get(key(d)) ?? 0) + 1);
      const [best, n] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
      if (n * 2 <= msgs.size && counts.size > 1) {
        this.abort({
          culprit: null,
          reason: 'bad-message',
          message: 'old parties disagree on the old commitments',
        });
      }
      refHex = best;
      ref = [...msgs.values()].find((d) => key(d) === best)!.pointLists['oldCommitments']!.points;
      if (!ref[0]!.equals(this.#groupKey)) {
        this.abort({
          culprit: null,
          reason: 'bad-message',
          message: 'old commitments do not match the group key',
        });
      }
    }
    for (const [from, d] of msgs) {
      if (key(d) !== refHex) {
        this.abort({
          culprit: from,
          reason: 'bad-message',
          message: `party ${from}: sent other old commitments`,
        });
      }
    }
    return ref;
  }

  #evalPoly(x: bigint): bigint {
    const Fn = this.suite.Fn;
    const c = this.#coeffs!;
    let acc = 0n;
    for (let k = c.length - 1; k >= 0; k--) acc = Fn.add(Fn.mul(acc, x), c[k]!);
    return acc;
  }

  #wipeCoeffs(): void {
    if (this.#coeffs) for (let i = 0; i < this.#coeffs.length; i++) this.#coeffs[i] = 0n;
    this.#coeffs = undefined;
  }

  protected wipe(): void {
    this.#wipeCoeffs();
    this.#result?.share.destroy();
    this.#result = undefined;
  }
}

function randomScalar(suite: FrostSuite): bigint {
  const b = suite.sign.utils.randomScalar();
  let x = 0n;
  if (suite.Fn.isLE) for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  else for (const v of b) x = (x << 8n) | BigInt(v);
  b.fill(0);
  return x;
}

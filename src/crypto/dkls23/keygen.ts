// DKG, refresh and reshare for DKLs23 keys — one state machine with two roles:
//   dealers D deal a Feldman-committed polynomial of degree t'-1 (DKLs23 §6 / Protocol 6.1 uses any
//   UC-secure DKG; we use Pedersen/Feldman VSS with Schnorr proofs of knowledge of each constant term,
//   as FROST's KeyGen does, so no rogue-key attack), and
//   receivers N get a new share and run the pairwise OT setup (base OT, ot/base-ot.ts) they need to sign.
// DKG: D = N = all parties, random constant terms, chain code by commit-and-reveal.
// Reshare: D = participating old parties, each deals λ_i·x_i (Lagrange over D), which everyone checks
//   against the old public share, so the public key is unchanged; N = the new committee.
// Refresh: reshare with D = N = the current committee and the same threshold.
// Rounds: 1 commitments+shares+OT msg1 · 2 echo (+chain code) + OT msg2 · 3-5 OT verification.

import { randomBytes } from 'node:crypto';
import { KAPPA_BYTES, VsotReceiver, VsotSender } from '../ot/base-ot.ts';
import {
  ctEqual,
  DLOG_PROOF_BYTES,
  mod,
  mulG,
  N,
  Point as P,
  POINT_BYTES,
  type Point,
  proveDlog,
  Reader,
  randomScalar,
  taggedHash,
  verifyDlog,
  Writer,
} from '../ot/encoding.ts';
import type { PartyId, StepResult } from '../threshold.ts';
import { Dkls23Party, type Expect, type Inbound, lagrange } from './party.ts';
import { Dkls23KeyShare, keyIdOf, type PairOt, shareSecrets } from './share.ts';

const inv = (x: bigint): bigint => P.Fn.inv(x);

export interface KeygenConfig {
  protocol: 'dkls23/dkg' | 'dkls23/refresh' | 'dkls23/reshare';
  sessionId: string;
  partyId: PartyId;
  dealers: PartyId[];
  receivers: PartyId[];
  threshold: number;
  /** Reshare/refresh: the key being reshared (public data) and, for dealers, the old share. */
  old?: {
    share?: Dkls23KeyShare;
    publicKey: Uint8Array;
    chainCode: Uint8Array;
    publicShares?: ReadonlyMap<PartyId, Uint8Array>;
  };
}

export class KeygenParty extends Dkls23Party<Dkls23KeyShare> {
  readonly #c: KeygenConfig;
  readonly #ctx: Uint8Array;
  readonly #isDealer: boolean;
  readonly #isReceiver: boolean;
  #coeffs: bigint[] = [];
  #commitments = new Map<PartyId, Point[]>();
  #r1Bcast = new Map<PartyId, Uint8Array>();
  #ccOwn: Uint8Array | null = null;
  #ccCommit = new Map<PartyId, Uint8Array>();
  #share = 0n;
  #echo: Uint8Array | null = null;
  #vsotSend = new Map<PartyId, VsotSender>(); // we are base sender = Bob towards peer
  #vsotRecv = new Map<PartyId, VsotReceiver>(); // we are base receiver = Alice towards peer
  #delta = new Map<PartyId, Uint8Array>();
  #bobSeeds = new Map<PartyId, { seeds0: Uint8Array; seeds1: Uint8Array }>();
  #result: { publicKey: Point; chainCode: Uint8Array; publicShares: Map<PartyId, Uint8Array> } | null = null;

  constructor(c: KeygenConfig) {
    super(c.protocol, c.sessionId, c.partyId, [...new Set([...c.dealers, ...c.receivers])]);
    this.#c = c;
    this.#isDealer = c.dealers.includes(c.partyId);
    this.#isReceiver = c.receivers.includes(c.partyId);
    this.#ctx = taggedHash(
      'dkls23/keygen-ctx',
      c.protocol,
      c.sessionId,
      c.threshold,
      Uint8Array.from(c.dealers),
      Uint8Array.from(c.receivers),
      c.old?.publicKey ?? new Uint8Array(0),
    );
  }

  private peersN(): PartyId[] {
    return this.#c.receivers.filter((p) => p !== this.partyId);
  }

  protected expectations(round: number): Map<PartyId, Expect> {
    const e = new Map<PartyId, Expect>();
    const me = this.partyId;
    const inN = (p: PartyId) => this.#c.receivers.includes(p);
    const inD = (p: PartyId) => this.#c.dealers.includes(p);
    if (round === 1) {
      for (const p of this.participants) {
        if (p === me) continue;
        const bcast = inD(p);
        const p2p = this.#isReceiver && (inD(p) || inN(p));
        if (bcast || p2p) e.set(p, { bcast, p2p });
      }
    } else if (round === 2) {
      for (const p of this.participants) {
        if (p !== me) e.set(p, { bcast: true, p2p: this.#isReceiver && inN(p) });
      }
    } else if (this.#isReceiver && round <= 5) {
      for (const p of this.peersN()) e.set(p, { bcast: false, p2p: true });
    }
    return e;
  }

  protected onStart(): StepResult<Dkls23KeyShare> {
    const c = this.#c;
    const me = this.partyId;
    const out = [];
    if (this.#isDealer) {
      // Constant term: fresh (DKG) or λ_i·x_i over the dealer set (reshare/refresh).
      let a0: bigint;
      if (c.protocol === 'dkls23/dkg') a0 = randomScalar();
      else a0 = mod(lagrange(me, c.dealers, N, inv) * shareSecrets(c.old!.share!).x);
      this.#coeffs = [a0];
      for (let k = 1; k < c.threshold; k++) this.#coeffs.push(randomScalar());
      const C = this.#coeffs.map((a) => mulG(a));
      this.#commitments.set(me, C);
      const w = new Writer();
      for (const Ck of C) w.point(Ck);
      w.bytes(proveDlog(a0, C[0]!, taggedHash('dkls23/keygen-pok', this.#ctx, me)));
      if (c.protocol === 'dkls23/dkg') {
        this.#ccOwn = new Uint8Array(randomBytes(32));
        w.bytes(taggedHash('dkls23/cc-commit', this.#ctx, me, this.#ccOwn));
      }
      const b = w.finish();
      this.#r1Bcast.set(me, b);
      out.push(this.message(null, b));
    }
    if (this.#isReceiver) {
      for (const p of this.peersN()) {
        // mul(p→me): we are Bob, base-OT sender. mul(me→p): we are Alice, base-OT receiver with Δ.
        const snd = new VsotSender(this.otCtx(p, me));
        this.#vsotSend.set(p, snd);
        const delta = new Uint8Array(randomBytes(KAPPA_BYTES));
        this.#delta.set(p, delta);
        this.#vsotRecv.set(p, new VsotReceiver(this.otCtx(me, p), delta));
      }
    }
    for (const p of c.receivers) {
      if (p === me) continue;
      const w = new Writer();
      let any = false;
      if (this.#isDealer) {
        w.scalar(this.evalPoly(p));
        any = true;
      }
      if (this.#isReceiver) {
        w.bytes(this.#vsotSend.get(p)!.message1());
        any = true;
      }
      if (any) out.push(this.message(p, w.finish()));
    }
    if (this.#isDealer && this.#isReceiver) this.#share = this.evalPoly(me);
    return { outgoing: out };
  }

  private otCtx(alice: PartyId, bob: PartyId): Uint8Array {
    return taggedHash('dkls23/vsot-ctx', this.#ctx, alice, bob);
  }

  private evalPoly(x: PartyId): bigint {
    let acc = 0n;
    const X = BigInt(x);
    for (let k = this.#coeffs.length - 1; k >= 0; k--) acc = mod(acc * X + this.#coeffs[k]!);
    return acc;
  }

  protected onRound(round: number, inb: Map<PartyId, Inbound>): StepResult<Dkls23KeyShare> {
    switch (round) {
      case 1:
        return this.round1(inb);
      case 2:
        return this.round2(inb);
      case 3:
      case 4:
      case 5:
        return this.roundOt(round, inb);
      default:
        return this.fail('bad-state', null, `no round ${round}`);
    }
  }

  private round1(inb: Map<PartyId, Inbound>): StepResult<Dkls23KeyShare> {
    const c = this.#c;
    const me = this.partyId;
    const t = c.threshold;
    const dkg = c.protocol === 'dkls23/dkg';
    // Dealers' broadcasts: commitments, proof of knowledge of the constant term, chain-code commitment.
    for (const d of c.dealers) {
      if (d === me) continue;
      const b = inb.get(d)!.bcast!;
      this.#r1Bcast.set(d, b);
      this.from(d, () => {
        const r = new Reader(b, 'keygen/round1');
        const C: Point[] = [];
        for (let k = 0; k < t; k++) C.push(r.point(`C[${k}]`));
        const proof = r.bytes(DLOG_PROOF_BYTES, 'pok');
        if (dkg) this.#ccCommit.set(d, new Uint8Array(r.bytes(32, 'cc-commit')));
        r.end();
        if (!verifyDlog(C[0]!, proof, taggedHash('dkls23/keygen-pok', this.#ctx, d))) {
          this.fail('invalid-proof', d, 'proof of knowledge of the constant term does not verify');
        }
        if (!dkg) {
          // Reshare: the dealt secret must be λ_d·x_d, i.e. C_0 = λ_d·X_d (old public share).
          const Xd = P.fromBytes(c.old!.publicShares!.get(d)!);
          if (!C[0]!.equals(Xd.multiplyUnsafe(lagrange(d, c.dealers, N, inv)))) {
            this.fail('invalid-share', d, 'dealt constant term does not match the old public share');
          }
        }
        this.#commitments.set(d, C);
      });
    }
    const out = [];
    if (this.#isReceiver) {
      for (const p of this.participants) {
        if (p === me) continue;
        const msg = inb.get(p)?.p2p;
        if (msg === undefined) continue;
        this.from(p, () => {
          const r = new Reader(msg, 'keygen/round1-p2p');
          if (c.dealers.includes(p)) {
            const y = r.scalar('share');
            // Feldman check: y·G = Σ_k C_k·me^k
            if (!mulG(y).equals(evalCommitments(this.#commitments.get(p)!, me))) {
              this.fail('invalid-share', p, 'share does not match the Feldman commitments');
            }
            this.#share = mod(this.#share + y);
          }
          if (c.receivers.includes(p)) {
            const m1 = r.bytes(POINT_BYTES + DLOG_PROOF_BYTES, 'vsot-msg1');
            this.#vsotMsg2.set(p, this.#vsotRecv.get(p)!.message2(m1));
          }
          r.end();
        });
      }
    }
    // Aggregate: public key, new public shares of every receiver.
    const agg: Point[] = [];
    for (let k = 0; k < t; k++) {
      let s = P.ZERO;
      for (const d of c.dealers) s = s.add(this.#commitments.get(d)![k]!);
      agg.push(s);
    }
    const publicKey = agg[0]!;
    if (publicKey.equals(P.ZERO)) this.fail('invalid-share', null, 'public key is the identity');
    if (!dkg && !ctEqual(publicKey.toBytes(true), c.old!.publicKey)) {
      this.fail('invalid-share', null, 'reshared public key differs from the old one');
    }
    const publicShares = new Map<PartyId, Uint8Array>();
    for (const p of c.receivers) publicShares.set(p, evalCommitments(agg, p).toBytes(true));
    if (this.#isReceiver && !mulG(this.#share).equals(P.fromBytes(publicShares.get(me)!))) {
      this.fail('invalid-share', null, 'own share inconsistent with the commitments');
    }
    this.#result = { publicKey, chainCode: dkg ? new Uint8Array(32) : c.old!.chainCode, publicShares };
    // Echo of every round-1 broadcast, so an equivocating dealer is caught before anything is used.
    this.#echo = taggedHash('dkls23/echo', this.#ctx, ...c.dealers.map((d) => this.#r1Bcast.get(d)!));
    const bw = new Writer().bytes(this.#echo);
    if (dkg && this.#isDealer) bw.bytes(this.#ccOwn!);
    out.push(this.message(null, bw.finish()));
    for (const [p, m2] of this.#vsotMsg2) out.push(this.message(p, m2));
    this.#vsotMsg2.clear();
    return { outgoing: out };
  }

  #vsotMsg2 = new Map<PartyId, Uint8Array>();
  #pendingBlame: PartyId[] = [];

  private round2(inb: Map<PartyId, Inbound>): StepResult<Dkls23KeyShare> {
    const c = this.#c;
    const me = this.partyId;
    const dkg = c.protocol === 'dkls23/dkg';
    const cc = new Map<PartyId, Uint8Array>();
    if (dkg && this.#isDealer) cc.set(me, this.#ccOwn!);
    for (const p of [...this.participants].sort((a, b) => a - b)) {
      if (p === me) continue;
      const slot = inb.get(p)!;
      this.from(p, () => {
        const r = new Reader(slot.bcast!, 'keygen/round2');
        const echo = r.bytes(32, 'echo');
        if (!ctEqual(echo, this.#echo!)) {
          this.fail('bad-message', p, 'round-1 broadcasts seen differently (equivocation or tampering)');
        }
        if (dkg && c.dealers.includes(p)) {
          const v = new Uint8Array(r.bytes(32, 'chain-code'));
          if (!ctEqual(taggedHash('dkls23/cc-commit', this.#ctx, p, v), this.#ccCommit.get(p)!)) {
            this.fail('invalid-proof', p, 'chain-code contribution does not match its commitment');
          }
          cc.set(p, v);
        }
        r.end();
      });
    }
    if (dkg)
      this.#result!.chainCode = taggedHash(
        'dkls23/chain-code',
        this.#ctx,
        ...c.dealers.map((d) => cc.get(d)!),
      );
    if (!this.#isReceiver) {
      // Leaving party: the reshare no longer needs it; it gets a tombstone (no secret).
      return { outgoing: [], output: this.buildShare(null) };
    }
    const out = [];
    for (const p of this.peersN()) {
      const m2 = inb.get(p)!.p2p!;
      out.push(
        this.message(
          p,
          this.from(p, () => this.#vsotSend.get(p)!.message3(m2)),
        ),
      );
    }
    return { outgoing: out };
  }

  private roundOt(round: number, inb: Map<PartyId, Inbound>): StepResult<Dkls23KeyShare> {
    const out = [];
    for (const p of this.peersN()) {
      const m = inb.get(p)!.p2p!;
      if (round === 3)
        out.push(
          this.message(
            p,
            this.from(p, () => this.#vsotRecv.get(p)!.message4(m)),
          ),
        );
      else if (round === 4) {
        const snd = this.#vsotSend.get(p)!;
        out.push(
          this.message(
            p,
            this.from(p, () => snd.message5(m)),
          ),
        );
        if (snd.responseFailed) this.#pendingBlame.push(p);
        else this.#bobSeeds.set(p, snd.takeSeeds());
      } else {
        this.from(p, () => this.#vsotRecv.get(p)!.finish(m));
      }
    }
    if (round < 5) return { outgoing: out };
    for (const p of this.#pendingBlame)
      this.fail('invalid-proof', p, 'vsot: receiver response does not verify');
    const ot = new Map<PartyId, PairOt>();
    for (const p of this.peersN()) {
      const bob = this.#bobSeeds.get(p)!;
      ot.set(p, {
        delta: this.#delta.get(p)!,
        seeds: this.#vsotRecv.get(p)!.takeSeeds(),
        seeds0: bob.seeds0,
        seeds1: bob.seeds1,
      });
    }
    this.#delta.clear();
    this.#bobSeeds.clear();
    const share = this.buildShare({ x: this.#share, ot });
    return { outgoing: [], output: share };
  }

  private buildShare(secret: { x: bigint; ot: Map<PartyId, PairOt> } | null): Dkls23KeyShare {
    const c = this.#c;
    const res = this.#result!;
    const info = {
      scheme: 'ecdsa-secp256k1' as const,
      threshold: c.threshold,
      parties: c.receivers,
      publicKey: res.publicKey.toBytes(true),
      chainCode: res.chainCode,
    };
    const keyId = keyIdOf({
      sessionId: this.sessionId,
      protocol: this.protocol,
      publicKey: info.publicKey,
      chainCode: info.chainCode,
      threshold: info.threshold,
      parties: info.parties,
      publicShares: res.publicShares,
    });
    return new Dkls23KeyShare({ partyId: this.partyId, info, keyId, publicShares: res.publicShares, secret });
  }

  protected wipe(): void {
    this.#coeffs.fill(0n);
    this.#coeffs = [];
    this.#share = 0n;
    this.#ccOwn = null;
    for (const s of this.#vsotSend.values()) s.destroy();
    for (const r of this.#vsotRecv.values()) r.destroy();
    this.#vsotSend.clear();
    this.#vsotRecv.clear();
    if (!this.done) {
      for (const d of this.#delta.values()) d.fill(0);
      for (const b of this.#bobSeeds.values()) {
        b.seeds0.fill(0);
        b.seeds1.fill(0);
      }
    }
    this.#delta.clear();
    this.#bobSeeds.clear();
  }
}

function evalCommitments(C: Point[], x: PartyId): Point {
  // Horner in the exponent: Σ_k C_k·x^k
  let acc = P.ZERO;
  const X = BigInt(x);
  for (let k = C.length - 1; k >= 0; k--) acc = acc.multiplyUnsafe(X).add(C[k]!);
  return acc;
}

// DKLs23 signing (ePrint 2023/765, Protocol 3.6), split as the paper allows into a message-independent
// presign (rounds 1-2 = steps 4-9) and a one-broadcast online sign (step 10 + output).
//   Presign round 1 (steps 4-6): r_i, φ_i; R_i = r_i·G committed; as Bob, start the multiplication with
//     every peer (random input χ_ij).
//   Presign round 2 (step 7): as Alice, multiply (r_i, sk_i) with each peer's χ; send Γ_u = c_u·G,
//     Γ_v = c_v·G, ψ_ij = φ_i − χ_ij, and open R_i.
//   Presign finish (steps 8-9): check commitments, finish each multiplication as Bob, check
//     χ_ij·R_j = d_u·G + Γ_u and χ_ij·pk_j = d_v·G + Γ_v; R = Σ R_j; keep (φ_i, u_i, v_i, R).
//   Online (step 10): broadcast w_i = e·φ_i + r_x·v_i and u_i; s = Σw / Σu; verify; low-s.
// Additions, both local and documented in docs/crypto/dkls23.md:
//   • HD tweak t at sign time: v_i + t·φ_i shares φ·(sk + t), so presignatures are path-independent.
//   • Groth–Shoup re-randomisation (ePrint 2021/1330 §6): R' = R + δ·G, δ = H(presig, R, pk', e), and
//     u_i + δ·φ_i shares φ·(k + δ), which removes the related-key/presignature weakness they describe.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { deriveSecp256k1 } from '../hd.ts';
import {
  compress,
  decompress,
  ecdsaVerify,
  type Jac,
  jAdd,
  jAddAffine,
  jNeg,
  jToAffine,
  jToAffineMany,
  mulG,
  mulVarUnsafe,
  type VarBaseTable,
  varBaseTable,
} from '../ot/ec.ts';
import {
  bytesToBigInt,
  ctEqual,
  decodePoint,
  hashToScalar,
  mod,
  N,
  Point as P,
  Reader,
  randomScalar,
  taggedHash,
  Writer,
} from '../ot/encoding.ts';
import {
  type BobState,
  destroyBobState,
  MUL_ALICE_BYTES,
  mulAlice,
  mulBobFinish,
  mulBobStart,
} from '../ot/mul.ts';
import { OTE_MESSAGE_BYTES } from '../ot/ote.ts';
import {
  type PartyId,
  type Presignature,
  type ProtocolMessage,
  type SchemeSignature,
  type StepResult,
  ThresholdAbort,
} from '../threshold.ts';
import { checkCommittee, Dkls23Party, type Expect, type Inbound, lagrange } from './party.ts';
import { type Dkls23KeyShare, gadgetFor, pairContext, shareSecrets } from './share.ts';

const inv = (x: bigint): bigint => P.Fn.inv(x);
const jFromAffine = ([x, y]: readonly [bigint, bigint]): Jac => ({ X: x, Y: y, Z: 1n });
function affine(p: Jac): [bigint, bigint] {
  const a = jToAffine(p);
  if (!a) throw new Error('unexpected identity point'); // k = 0: probability 2^-256
  return a;
}

// Decompressed (child) public keys for the final verification: public data, bounded cache.
const PK_POINTS = new Map<string, VarBaseTable>();
function publicKeyPoint(pk: Uint8Array): VarBaseTable {
  const k = Buffer.from(pk).toString('hex');
  let p = PK_POINTS.get(k);
  if (!p) {
    p = varBaseTable(decompress(pk, 'public key'));
    if (PK_POINTS.size >= 1024) PK_POINTS.clear();
    PK_POINTS.set(k, p);
  }
  return p;
}

// pk_j = λ_j·X_j for each signer set, derived from the stored public shares (public values; cached
// per share object as a small table of odd multiples, so a loaded key pays this once per signer set).
const PEER_KEYS = new WeakMap<Dkls23KeyShare, Map<string, VarBaseTable>>();
function peerKeyShare(share: Dkls23KeyShare, signers: readonly PartyId[], p: PartyId): VarBaseTable {
  let m = PEER_KEYS.get(share);
  if (!m) {
    m = new Map();
    PEER_KEYS.set(share, m);
  }
  const k = `${signers.join(',')}:${p}`;
  let pk = m.get(k);
  if (!pk) {
    const X = decompress(share.publicShares.get(p)!, 'public share');
    pk = varBaseTable(affine(mulVarUnsafe(X, lagrange(p, signers, N, inv))));
    m.set(k, pk);
  }
  return pk;
}

interface PresigSecret {
  R: Uint8Array;
  /** R in affine coordinates when known (saves a decompression at sign time). */
  Rxy?: [bigint, bigint];
  phi: bigint;
  u: bigint;
  v: bigint;
}

const PRESIG_SECRETS = new WeakMap<Dkls23Presignature, PresigSecret>();

/** One party's presignature: single-use, consumed atomically by the first sign that takes it. */
export class Dkls23Presignature implements Presignature {
  readonly scheme = 'ecdsa-secp256k1' as const;
  readonly id: string;
  readonly partyId: PartyId;
  readonly signers: readonly PartyId[];
  /** keyId of the key generation it was made with. */
  readonly keyId: Uint8Array;
  constructor(
    id: string,
    partyId: PartyId,
    signers: readonly PartyId[],
    keyId: Uint8Array,
    secret: PresigSecret,
  ) {
    this.id = id;
    this.partyId = partyId;
    this.signers = Object.freeze([...signers]);
    this.keyId = keyId;
    PRESIG_SECRETS.set(this, secret);
    Object.freeze(this);
  }
  get consumed(): boolean {
    return !PRESIG_SECRETS.has(this);
  }
  /** Take the secret out (marks consumed before returning); a second call throws. */
  take(protocol: string): PresigSecret {
    const s = PRESIG_SECRETS.get(this);
    PRESIG_SECRETS.delete(this);
    if (!s || s.phi === 0n || s.u === 0n) {
      throw new ThresholdAbort({
        protocol,
        round: 0,
        culprit: null,
        reason: 'consumed',
        message: `presignature ${this.id.slice(0, 16)}… was already used`,
      });
    }
    return s;
  }
  toJSON(): object {
    return {
      scheme: this.scheme,
      id: this.id,
      partyId: this.partyId,
      signers: this.signers,
      consumed: this.consumed,
    };
  }
  toString(): string {
    return `[Dkls23Presignature ${this.id.slice(0, 16)}… party ${this.partyId}${this.consumed ? ' consumed' : ''}]`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

const PRESIG_MAGIC = new TextEncoder().encode('CDP1');

/** Moves the presignature into bytes for encrypted storage: the in-memory object becomes consumed. */
export function exportPresignature(p: Presignature): Uint8Array {
  if (!(p instanceof Dkls23Presignature)) throw new TypeError('dkls23: not a DKLs23 presignature');
  const s = p.take('dkls23/presign');
  const w = new Writer()
    .bytes(PRESIG_MAGIC)
    .bytes(Buffer.from(p.id, 'hex'))
    .u8(p.partyId)
    .u8(p.signers.length);
  w.bytes(Uint8Array.from(p.signers)).bytes(p.keyId).bytes(s.R).scalar(s.phi).scalar(s.u).scalar(s.v);
  s.phi = 0n;
  s.u = 0n;
  s.v = 0n;
  return w.finish();
}

export function importPresignature(bytes: Uint8Array): Dkls23Presignature {
  const r = new Reader(bytes, 'dkls23/importPresignature');
  const magic = r.bytes(4, 'magic');
  if (!ctEqual(magic, PRESIG_MAGIC)) throw new TypeError('dkls23/importPresignature: bad magic');
  const id = Buffer.from(r.bytes(32, 'id')).toString('hex');
  const partyId = r.u8('partyId');
  const n = r.u8('n');
  const signers = [...r.bytes(n, 'signers')];
  const keyId = new Uint8Array(r.bytes(32, 'keyId'));
  const R = r.point('R').toBytes(true);
  const phi = r.scalar('phi', true);
  const u = r.scalar('u', true);
  const v = r.scalar('v');
  r.end();
  return new Dkls23Presignature(id, partyId, signers, keyId, { R, phi, u, v });
}

function checkSigners(share: Dkls23KeyShare, signers: readonly PartyId[], ctx: string): PartyId[] {
  const s = checkCommittee(signers, ctx);
  if (s.length !== share.info.threshold)
    throw new TypeError(`${ctx}: need exactly ${share.info.threshold} signers`);
  if (!s.includes(share.partyId)) throw new TypeError(`${ctx}: signers must include party ${share.partyId}`);
  for (const p of s)
    if (!share.info.parties.includes(p)) throw new TypeError(`${ctx}: signer ${p} not in committee`);
  if (!share.active) throw new TypeError(`${ctx}: key share is retired`);
  return s;
}

/** DKLs23 Protocol 3.6 steps 4-9. */
export class PresignParty extends Dkls23Party<Dkls23Presignature> {
  readonly #share: Dkls23KeyShare;
  readonly #signers: PartyId[];
  readonly #ctx: Uint8Array;
  #r = 0n;
  #phi = 0n;
  #sk = 0n;
  #Ri: [bigint, bigint] | null = null;
  #RiBytes: Uint8Array | null = null;
  #salt: Uint8Array | null = null;
  #bob = new Map<PartyId, BobState>();
  #com = new Map<PartyId, Uint8Array>();
  #c = new Map<PartyId, bigint[]>();
  constructor(protocol: string, sessionId: string, share: Dkls23KeyShare, signers: readonly PartyId[]) {
    const s = checkSigners(share, signers, protocol);
    super(protocol, sessionId, share.partyId, s);
    this.#share = share;
    this.#signers = s;
    this.#ctx = taggedHash('dkls23/presign-ctx', protocol, sessionId, share.keyId, Uint8Array.from(s));
  }

  private peers(): PartyId[] {
    return this.#signers.filter((p) => p !== this.partyId);
  }

  private mulCtx(alice: PartyId, bob: PartyId): Uint8Array {
    return taggedHash('dkls23/mul-ctx', this.#ctx, pairContext(this.#share.keyId, alice, bob));
  }

  protected expectations(round: number): Map<PartyId, Expect> {
    const e = new Map<PartyId, Expect>();
    if (round === 1 || round === 2) for (const p of this.peers()) e.set(p, { bcast: true, p2p: true });
    return e;
  }

  protected onStart(): StepResult<Dkls23Presignature> {
    const me = this.partyId;
    const sec = shareSecrets(this.#share);
    // Step 5: instance key r_i, inversion mask φ_i; sk_i = λ_i·x_i (additive share among signers).
    this.#r = randomScalar();
    this.#phi = randomScalar();
    this.#sk = mod(lagrange(me, this.#signers, N, inv) * sec.x);
    this.#Ri = affine(mulG(this.#r));
    this.#RiBytes = compress(this.#Ri);
    this.#salt = new Uint8Array(randomBytes(32));
    const com = taggedHash('dkls23/presign-commit', this.#ctx, me, this.#RiBytes, this.#salt);
    const out: ProtocolMessage[] = [
      this.message(null, new Writer().bytes(this.#share.keyId).bytes(com).finish()),
    ];
    // Step 6: as Bob with every peer (peer is Alice), random input χ.
    for (const p of this.peers()) {
      const ot = sec.ot.get(p)!;
      const st = mulBobStart(this.mulCtx(p, me), gadgetFor(this.#share, p, me), ot.seeds0, ot.seeds1);
      this.#bob.set(p, st);
      out.push(this.message(p, st.message));
    }
    return { outgoing: out };
  }

  protected onRound(round: number, inb: Map<PartyId, Inbound>): StepResult<Dkls23Presignature> {
    return round === 1 ? this.round1(inb) : this.round2(inb);
  }

  private round1(inb: Map<PartyId, Inbound>): StepResult<Dkls23Presignature> {
    const me = this.partyId;
    const sec = shareSecrets(this.#share);
    const out: ProtocolMessage[] = [];
    for (const p of this.peers()) {
      const { bcast, p2p } = inb.get(p)!;
      this.from(p, () => {
        const r = new Reader(bcast!, 'presign/round1');
        const keyId = r.bytes(32, 'keyId');
        this.#com.set(p, new Uint8Array(r.bytes(32, 'commitment')));
        r.end();
        if (!ctEqual(keyId, this.#share.keyId))
          this.fail('bad-message', p, 'key share from another key generation');
        if (p2p!.length !== OTE_MESSAGE_BYTES) this.fail('bad-message', p, 'OT-extension message length');
      });
    }
    for (const p of this.peers()) {
      const ot = sec.ot.get(p)!;
      // Step 7: as Alice with inputs (r_i, sk_i) against the peer's χ.
      const { c, message } = this.from(p, () =>
        mulAlice(
          this.mulCtx(me, p),
          gadgetFor(this.#share, me, p),
          ot.delta,
          ot.seeds,
          [this.#r, this.#sk],
          inb.get(p)!.p2p!,
        ),
      );
      this.#c.set(p, c);
      const chi = this.#bob.get(p)!.b;
      const [gu, gv] = jToAffineMany([mulG(c[0]!), mulG(c[1]!)]);
      if (!gu || !gv) throw new Error('Γ is the identity'); // c = 0: probability 2^-256
      const w = new Writer()
        .bytes(compress(gu))
        .bytes(compress(gv))
        .scalar(mod(this.#phi - chi))
        .bytes(message);
      out.push(this.message(p, w.finish()));
    }
    out.push(this.message(null, new Writer().bytes(this.#RiBytes!).bytes(this.#salt!).finish()));
    return { outgoing: out };
  }

  private round2(inb: Map<PartyId, Inbound>): StepResult<Dkls23Presignature> {
    const me = this.partyId;
    const R = jFromAffine(this.#Ri!);
    let uSum = 0n;
    let vSum = 0n;
    let psi = 0n;
    for (const p of this.peers()) {
      const { bcast, p2p } = inb.get(p)!;
      this.from(p, () => {
        // Step 8: open the commitment to R_j.
        const rb = new Reader(bcast!, 'presign/round2');
        const RjBytes = rb.bytes(33, 'R');
        const salt = rb.bytes(32, 'salt');
        rb.end();
        const Rj = decompress(RjBytes, 'presign/round2: R'); // on the curve, not the identity
        if (!ctEqual(taggedHash('dkls23/presign-commit', this.#ctx, p, RjBytes, salt), this.#com.get(p)!)) {
          this.fail('invalid-proof', p, 'R_j does not open its commitment');
        }
        const r = new Reader(p2p!, 'presign/round2-p2p');
        const Gu = r.bytes(33, 'Gamma_u');
        const Gv = r.bytes(33, 'Gamma_v');
        const psiJ = r.scalar('psi');
        const mulMsg = r.bytes(MUL_ALICE_BYTES, 'mul');
        r.end();
        const st = this.#bob.get(p)!;
        const d = mulBobFinish(this.mulCtx(p, me), gadgetFor(this.#share, p, me), st, mulMsg);
        // Step 8 consistency checks: χ·R_j = d_u·G + Γ_u and χ·pk_j = d_v·G + Γ_v, evaluated as
        // Γ_u = χ·R_j − d_u·G (and likewise Γ_v) compared in canonical compressed form.
        const eu = mulVarUnsafe(Rj, st.b);
        jAdd(eu, jNeg(mulG(d[0]!)));
        const ev = mulVarUnsafe(peerKeyShare(this.#share, this.#signers, p), st.b);
        jAdd(ev, jNeg(mulG(d[1]!)));
        const [au, av] = jToAffineMany([eu, ev]);
        if (!au || !ctEqual(compress(au), Gu)) {
          decodePoint(Gu, 'presign/round2-p2p: Gamma_u'); // malformed → bad-message
          this.fail('invalid-proof', p, 'Γ_u check failed (instance key inconsistent with R_j)');
        }
        if (!av || !ctEqual(compress(av), Gv)) {
          decodePoint(Gv, 'presign/round2-p2p: Gamma_v');
          this.fail('invalid-proof', p, 'Γ_v check failed (key share inconsistent with pk_j)');
        }
        const c = this.#c.get(p)!;
        uSum += c[0]! + d[0]!;
        vSum += c[1]! + d[1]!;
        psi += psiJ;
        jAddAffine(R, Rj[0], Rj[1]);
      });
    }
    const Ra = jToAffine(R);
    if (!Ra) this.fail('invalid-proof', null, 'R is the identity');
    const RBytes = compress(Ra);
    // Step 9: u_i = r_i(φ_i + Σψ) + Σ(c_u + d_u), v_i = sk_i(φ_i + Σψ) + Σ(c_v + d_v).
    const phiPlus = mod(this.#phi + psi);
    const u = mod(this.#r * phiPlus + uSum);
    const v = mod(this.#sk * phiPlus + vSum);
    const id = Buffer.from(taggedHash('dkls23/presig-id', this.#ctx, RBytes)).toString('hex');
    const presig = new Dkls23Presignature(id, me, this.#signers, this.#share.keyId, {
      R: RBytes,
      Rxy: Ra,
      phi: this.#phi,
      u,
      v,
    });
    return { outgoing: [], output: presig };
  }

  protected wipe(): void {
    this.#r = 0n;
    this.#phi = 0n;
    this.#sk = 0n;
    this.#salt?.fill(0);
    for (const st of this.#bob.values()) destroyBobState(st);
    this.#bob.clear();
    for (const c of this.#c.values()) c.fill(0n);
    this.#c.clear();
  }
}

/** The ECDSA digest as a scalar (32 bytes, so bits2int is the plain integer; then mod q). */
function digestScalar(d: Uint8Array): bigint {
  return mod(bytesToBigInt(d));
}

/** Online signing: DKLs23 Protocol 3.6 step 10 and the output step, in one broadcast round. */
export class OnlineSignParty extends Dkls23Party<SchemeSignature> {
  readonly #share: Dkls23KeyShare;
  readonly #signers: PartyId[];
  readonly #digest: Uint8Array;
  readonly #path: string;
  #presig: Dkls23Presignature | null;
  #secret: PresigSecret | null = null;
  #ownW = 0n;
  #ownU = 0n;
  #r = 0n;
  #Rp: [bigint, bigint] | null = null;
  #childPk: Uint8Array | null = null;
  #tweak = 0n;
  readonly #roundOffset: number;
  readonly #presignParty: PresignParty | null;

  constructor(args: {
    protocol: string;
    sessionId: string;
    share: Dkls23KeyShare;
    signers: readonly PartyId[];
    message: Uint8Array;
    derivationPath?: string;
    presignature?: Presignature;
  }) {
    const s = checkSigners(args.share, args.signers, args.protocol);
    super(args.protocol, args.sessionId, args.share.partyId, s);
    // Raw 32-byte digests only (see docs/crypto/dkls23.md, ePrint 2021/1330).
    if (!(args.message instanceof Uint8Array) || args.message.length !== 32) {
      throw new TypeError(`${args.protocol}: message must be a 32-byte digest the caller computed`);
    }
    this.#share = args.share;
    this.#signers = s;
    this.#digest = new Uint8Array(args.message);
    this.#path = args.derivationPath ?? 'm';
    // Validate the path now (throws on hardened or malformed); the derivation is public data.
    const derived = deriveSecp256k1(args.share.info.publicKey, args.share.info.chainCode, this.#path);
    this.#childPk = derived.publicKey;
    this.#tweak = derived.tweak;
    if (args.presignature) {
      const p = args.presignature;
      if (!(p instanceof Dkls23Presignature))
        throw new TypeError(`${args.protocol}: not a DKLs23 presignature`);
      if (p.partyId !== args.share.partyId)
        throw new TypeError(`${args.protocol}: presignature of another party`);
      if (p.signers.length !== s.length || p.signers.some((x, i) => x !== s[i])) {
        throw new TypeError(`${args.protocol}: presignature made for another signer set`);
      }
      if (!ctEqual(p.keyId, args.share.keyId))
        throw new TypeError(`${args.protocol}: presignature of another key`);
      this.#presig = p;
      this.#presignParty = null;
      this.#roundOffset = 0;
    } else {
      this.#presig = null;
      this.#presignParty = new PresignParty(args.protocol, args.sessionId, args.share, s);
      this.#roundOffset = 2;
    }
  }

  protected expectations(round: number): Map<PartyId, Expect> {
    const e = new Map<PartyId, Expect>();
    if (round <= this.#roundOffset) {
      for (const p of this.#signers) if (p !== this.partyId) e.set(p, { bcast: true, p2p: true });
    } else if (round === this.#roundOffset + 1) {
      for (const p of this.#signers) if (p !== this.partyId) e.set(p, { bcast: true, p2p: false });
    }
    return e;
  }

  protected onStart(): StepResult<SchemeSignature> {
    if (this.#presignParty) return { outgoing: this.#presignParty.start().outgoing };
    return this.online();
  }

  private online(): StepResult<SchemeSignature> {
    const presig = this.#presig!;
    this.#presig = null;
    // Consumed atomically before anything is computed or sent.
    const sec = presig.take(this.protocol);
    this.#secret = sec;
    const tweak = this.#tweak;
    const publicKey = this.#childPk!;
    const e = digestScalar(this.#digest);
    // Groth–Shoup re-randomisation of the presignature nonce.
    const delta = hashToScalar(
      'dkls23/rerandomize',
      Buffer.from(presig.id, 'hex'),
      sec.R,
      publicKey,
      this.#digest,
    );
    const RpJ = mulG(delta);
    const [Rx, Ry] = sec.Rxy ?? decompress(sec.R, 'presignature R');
    jAddAffine(RpJ, Rx, Ry);
    const Rp = jToAffine(RpJ);
    if (!Rp) this.fail('invalid-proof', null, 're-randomised R is the identity');
    const r = mod(Rp[0]);
    if (r === 0n) this.fail('invalid-proof', null, 'r = 0');
    this.#Rp = Rp;
    this.#r = r;
    // Step 10 with tweak t: w_i = e·φ_i + r·(v_i + t·φ_i); u'_i = u_i + δ·φ_i.
    this.#ownW = mod(e * sec.phi + r * (sec.v + tweak * sec.phi));
    this.#ownU = mod(sec.u + delta * sec.phi);
    sec.phi = 0n;
    sec.u = 0n;
    sec.v = 0n;
    return { outgoing: [this.message(null, new Writer().scalar(this.#ownW).scalar(this.#ownU).finish())] };
  }

  protected onRound(round: number, inb: Map<PartyId, Inbound>): StepResult<SchemeSignature> {
    const inner = this.#presignParty;
    if (inner && round <= this.#roundOffset) {
      // Feed the presign sub-party the same messages (re-wrapped: it checks its own headers).
      const msgs: ProtocolMessage[] = [];
      for (const [from, slot] of inb) {
        if (slot.bcast) msgs.push(this.rewrap(from, null, round, slot.bcast));
        if (slot.p2p) msgs.push(this.rewrap(from, this.partyId, round, slot.p2p));
      }
      const res = inner.receive(msgs);
      if (res.output) {
        this.#presig = res.output;
        return this.online();
      }
      return { outgoing: res.outgoing };
    }
    return this.finish(inb);
  }

  private rewrap(from: PartyId, to: PartyId | null, round: number, payload: Uint8Array): ProtocolMessage {
    return { v: 1, protocol: this.protocol, sessionId: this.sessionId, round, from, to, payload };
  }

  private finish(inb: Map<PartyId, Inbound>): StepResult<SchemeSignature> {
    let w = this.#ownW;
    let u = this.#ownU;
    for (const p of this.#signers) {
      if (p === this.partyId) continue;
      this.from(p, () => {
        const r = new Reader(inb.get(p)!.bcast!, 'sign/online');
        w += r.scalar('w');
        u += r.scalar('u', true);
        r.end();
      });
    }
    w = mod(w);
    u = mod(u);
    if (u === 0n) this.fail('invalid-signature', null, 'Σu = 0');
    let s = mod(w * inv(u));
    const [Rx, Ry] = this.#Rp!;
    let recovery = (Ry & 1n ? 1 : 0) | (Rx >= N ? 2 : 0);
    if (s > N >> 1n) {
      s = N - s;
      recovery ^= 1;
    }
    if (s === 0n) this.fail('invalid-signature', null, 's = 0');
    const sig = new Writer().scalar(this.#r).scalar(s).finish();
    // The combined signature is verified before release (DKLs23 Protocol 3.6, output step).
    // (ec.ts ECDSA verification: r, s in range, low s, (e/s)·G + (r/s)·Q has x ≡ r mod n.)
    const ok = ecdsaVerify(this.#r, s, digestScalar(this.#digest), publicKeyPoint(this.#childPk!));
    if (!ok || recovery > 1) {
      this.fail(
        'invalid-signature',
        null,
        'combined signature does not verify: some signer cheated; lock the key',
      );
    }
    return { outgoing: [], output: { signature: sig, recovery, signingPublicKey: this.#childPk! } };
  }

  protected wipe(): void {
    this.#ownW = 0n;
    this.#ownU = 0n;
    if (this.#secret) {
      this.#secret.phi = 0n;
      this.#secret.u = 0n;
      this.#secret.v = 0n;
    }
    this.#presignParty?.destroy();
  }
}

// The DKLs23 key share: public key data (the same at every party) plus this party's secret Shamir
// share and the pairwise OT-extension setup (both directions with every other party). Secrets live
// in a module-private WeakMap, so no enumeration, JSON.stringify or util.inspect of the object can
// reach them; exportShareForStorage is the one explicit serialisation.
import { inspect } from 'node:util';
import { KAPPA, KAPPA_BYTES, SEED_BYTES } from '../ot/base-ot.ts';
import { DecodeError, mulG, Point as P, type Point, Reader, taggedHash, Writer } from '../ot/encoding.ts';
import { gadgetVector } from '../ot/mul.ts';
import type { KeyShare, PartyId, PublicKeyInfo } from '../threshold.ts';

/** Pairwise OT material with one peer. */
export interface PairOt {
  /** We are Alice (OTE sender) towards the peer: our correlation Δ and the chosen seeds. */
  delta: Uint8Array;
  seeds: Uint8Array;
  /** We are Bob (OTE receiver) towards the peer: both seeds of every base OT. */
  seeds0: Uint8Array;
  seeds1: Uint8Array;
}

interface ShareSecrets {
  x: bigint;
  ot: Map<PartyId, PairOt>;
}

const SECRETS = new WeakMap<Dkls23KeyShare, ShareSecrets>();
const GADGETS = new WeakMap<Dkls23KeyShare, Map<string, bigint[]>>();

export class Dkls23KeyShare implements KeyShare {
  readonly scheme = 'ecdsa-secp256k1' as const;
  readonly partyId: PartyId;
  readonly info: PublicKeyInfo;
  /** Binds every signing session to this exact key generation (changes on refresh/reshare). */
  readonly keyId: Uint8Array;
  /** x_j·G for every party j (Feldman evaluation of the shared polynomial). */
  readonly publicShares: ReadonlyMap<PartyId, Uint8Array>;

  constructor(args: {
    partyId: PartyId;
    info: PublicKeyInfo;
    keyId: Uint8Array;
    publicShares: Map<PartyId, Uint8Array>;
    secret: ShareSecrets | null;
  }) {
    this.partyId = args.partyId;
    this.info = Object.freeze({ ...args.info, parties: Object.freeze([...args.info.parties]) });
    this.keyId = args.keyId;
    this.publicShares = args.publicShares;
    if (args.secret) SECRETS.set(this, args.secret);
    Object.freeze(this);
  }

  /** False for the tombstone a party receives when a reshare removes it from the committee. */
  get active(): boolean {
    return SECRETS.has(this);
  }

  /** Zero the secret share and OT seeds held by this object (after export, or when retiring it). */
  destroy(): void {
    const s = SECRETS.get(this);
    if (!s) return;
    s.x = 0n;
    for (const o of s.ot.values()) {
      o.delta.fill(0);
      o.seeds.fill(0);
      o.seeds0.fill(0);
      o.seeds1.fill(0);
    }
    SECRETS.delete(this);
  }

  toJSON(): object {
    return {
      scheme: this.scheme,
      partyId: this.partyId,
      threshold: this.info.threshold,
      parties: this.info.parties,
      publicKey: Buffer.from(this.info.publicKey).toString('hex'),
      active: this.active,
    };
  }
  toString(): string {
    return `[Dkls23KeyShare party ${this.partyId} of ${this.info.threshold}-of-${this.info.parties.length} ${Buffer.from(this.info.publicKey).toString('hex')}]`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

/** Module-internal access to the secrets (used by presign/sign/refresh). */
export function shareSecrets(share: Dkls23KeyShare): ShareSecrets {
  const s = SECRETS.get(share);
  if (!s) throw new Error('key share has no secret (retired or destroyed)');
  return s;
}

/** Context of the multiplication in which `alice` is the OT-extension sender towards `bob`. */
export function pairContext(keyId: Uint8Array, alice: PartyId, bob: PartyId): Uint8Array {
  return taggedHash('dkls23/pair', keyId, alice, bob);
}

/** Gadget vector for the ordered pair (computed once per share object). */
export function gadgetFor(share: Dkls23KeyShare, alice: PartyId, bob: PartyId): bigint[] {
  let m = GADGETS.get(share);
  if (!m) {
    m = new Map();
    GADGETS.set(share, m);
  }
  const k = `${alice}>${bob}`;
  let g = m.get(k);
  if (!g) {
    g = gadgetVector(pairContext(share.keyId, alice, bob));
    m.set(k, g);
  }
  return g;
}

export function keyIdOf(args: {
  sessionId: string;
  protocol: string;
  publicKey: Uint8Array;
  chainCode: Uint8Array;
  threshold: number;
  parties: readonly PartyId[];
  publicShares: Map<PartyId, Uint8Array>;
}): Uint8Array {
  const shares = args.parties.map((p) => args.publicShares.get(p)!);
  return taggedHash(
    'dkls23/key-id',
    args.protocol,
    args.sessionId,
    args.publicKey,
    args.chainCode,
    args.threshold,
    Uint8Array.from(args.parties),
    ...shares,
  );
}

const MAGIC = new TextEncoder().encode('CDK1');
const PAIR_BYTES = KAPPA_BYTES + 3 * KAPPA * SEED_BYTES;

export function exportShare(share: Dkls23KeyShare): Uint8Array {
  const s = SECRETS.get(share);
  const { info } = share;
  const w = new Writer().bytes(MAGIC).u8(share.partyId).u8(info.threshold).u8(info.parties.length);
  w.bytes(Uint8Array.from(info.parties)).bytes(info.publicKey).bytes(info.chainCode).bytes(share.keyId);
  for (const p of info.parties) w.bytes(share.publicShares.get(p)!);
  w.u8(s ? 1 : 0);
  if (s) {
    w.scalar(s.x);
    for (const p of info.parties) {
      if (p === share.partyId) continue;
      const o = s.ot.get(p)!;
      w.bytes(o.delta).bytes(o.seeds).bytes(o.seeds0).bytes(o.seeds1);
    }
  }
  return w.finish();
}

export function importShare(bytes: Uint8Array): Dkls23KeyShare {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('dkls23/importShare: bytes expected');
  const r = new Reader(bytes, 'dkls23/importShare');
  const magic = r.bytes(4, 'magic');
  if (!magic.every((b, i) => b === MAGIC[i])) throw new DecodeError('dkls23/importShare: bad magic');
  const partyId = r.u8('partyId');
  const threshold = r.u8('threshold');
  const n = r.u8('n');
  const parties = [...r.bytes(n, 'parties')];
  for (let i = 1; i < n; i++) {
    if (parties[i]! <= parties[i - 1]!) throw new DecodeError('dkls23/importShare: parties not sorted');
  }
  if (threshold < 2 || threshold > n || parties[0] === 0)
    throw new DecodeError('dkls23/importShare: bad committee');
  const pk = r.point('publicKey');
  const chainCode = new Uint8Array(r.bytes(32, 'chainCode'));
  const keyId = new Uint8Array(r.bytes(32, 'keyId'));
  const publicShares = new Map<PartyId, Uint8Array>();
  for (const p of parties) publicShares.set(p, r.point(`publicShare[${p}]`).toBytes(true));
  const active = r.u8('active');
  let secret: ShareSecrets | null = null;
  if (active === 1) {
    if (!parties.includes(partyId)) throw new DecodeError('dkls23/importShare: party not in committee');
    const x = r.scalar('x', true);
    const X: Point = mulG(x);
    if (!X.equals(P.fromBytes(publicShares.get(partyId)!)))
      throw new DecodeError('dkls23/importShare: share mismatch');
    const ot = new Map<PartyId, PairOt>();
    for (const p of parties) {
      if (p === partyId) continue;
      const b = r.bytes(PAIR_BYTES, `ot[${p}]`);
      let o = 0;
      const take = (len: number) => {
        const out = new Uint8Array(b.subarray(o, o + len));
        o += len;
        return out;
      };
      ot.set(p, {
        delta: take(KAPPA_BYTES),
        seeds: take(KAPPA * SEED_BYTES),
        seeds0: take(KAPPA * SEED_BYTES),
        seeds1: take(KAPPA * SEED_BYTES),
      });
    }
    secret = { x, ot };
  } else if (active !== 0) throw new DecodeError('dkls23/importShare: bad flag');
  r.end();
  return new Dkls23KeyShare({
    partyId,
    info: { scheme: 'ecdsa-secp256k1', threshold, parties, publicKey: pk.toBytes(true), chainCode },
    keyId,
    publicShares,
    secret,
  });
}

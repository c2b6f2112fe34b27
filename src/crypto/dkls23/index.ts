// DKLs23 threshold ECDSA over secp256k1 as a ThresholdScheme (the interface FROST implements too).
// Protocol notes, parameters and operator rules: docs/crypto/dkls23.md.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { deriveSecp256k1 } from '../hd.ts';
import type {
  DkgParams,
  KeyShare,
  Presignature,
  PresignParams,
  ProtocolParty,
  PublicKeyInfo,
  RefreshParams,
  ReshareParams,
  SchemeSignature,
  SignParams,
  ThresholdScheme,
} from '../threshold.ts';
import { KeygenParty } from './keygen.ts';
import { checkCommittee, checkPartyId, checkSessionId } from './party.ts';
import { Dkls23KeyShare, exportShare, importShare } from './share.ts';
import {
  Dkls23Presignature,
  exportPresignature,
  importPresignature,
  OnlineSignParty,
  PresignParty,
} from './sign.ts';

export { Dkls23KeyShare, Dkls23Presignature };

export const DKLS23_PROTOCOLS = {
  dkg: 'dkls23/dkg',
  refresh: 'dkls23/refresh',
  reshare: 'dkls23/reshare',
  presign: 'dkls23/presign',
  sign: 'dkls23/sign',
} as const;

const MAX_PARTIES = 255;

function asShare(s: KeyShare, ctx: string): Dkls23KeyShare {
  if (!(s instanceof Dkls23KeyShare)) throw new TypeError(`${ctx}: not a DKLs23 key share`);
  return s;
}

export const dkls23Ecdsa: ThresholdScheme<Dkls23KeyShare> = {
  name: 'ecdsa-secp256k1',

  dkg(p: DkgParams): ProtocolParty<Dkls23KeyShare> {
    const ctx = DKLS23_PROTOCOLS.dkg;
    checkSessionId(p.sessionId, ctx);
    checkPartyId(p.partyId, ctx);
    const parties = checkCommittee(p.parties, ctx);
    if (parties.length < 2 || parties.length > MAX_PARTIES)
      throw new TypeError(`${ctx}: need 2..255 parties`);
    if (!Number.isInteger(p.threshold) || p.threshold < 2 || p.threshold > parties.length) {
      throw new TypeError(`${ctx}: threshold must be in 2..n`);
    }
    return new KeygenParty({
      protocol: 'dkls23/dkg',
      sessionId: p.sessionId,
      partyId: p.partyId,
      dealers: parties,
      receivers: parties,
      threshold: p.threshold,
    });
  },

  presign(p: PresignParams<Dkls23KeyShare>): ProtocolParty<Presignature> {
    return new PresignParty(
      DKLS23_PROTOCOLS.presign,
      p.sessionId,
      asShare(p.share, 'dkls23/presign'),
      p.signers,
    );
  },

  sign(p: SignParams<Dkls23KeyShare>): ProtocolParty<SchemeSignature> {
    return new OnlineSignParty({
      protocol: DKLS23_PROTOCOLS.sign,
      sessionId: p.sessionId,
      share: asShare(p.share, 'dkls23/sign'),
      signers: p.signers,
      message: p.message,
      ...(p.derivationPath !== undefined ? { derivationPath: p.derivationPath } : {}),
      ...(p.presignature !== undefined ? { presignature: p.presignature } : {}),
    });
  },

  exportPresignatureForStorage: exportPresignature,
  importPresignatureFromStorage: importPresignature,

  refresh(p: RefreshParams<Dkls23KeyShare>): ProtocolParty<Dkls23KeyShare> {
    const share = asShare(p.share, 'dkls23/refresh');
    if (!share.active) throw new TypeError('dkls23/refresh: key share is retired');
    const parties = [...share.info.parties];
    return new KeygenParty({
      protocol: 'dkls23/refresh',
      sessionId: p.sessionId,
      partyId: share.partyId,
      dealers: parties,
      receivers: parties,
      threshold: share.info.threshold,
      old: {
        share,
        publicKey: share.info.publicKey,
        chainCode: share.info.chainCode,
        publicShares: share.publicShares,
      },
    });
  },

  reshare(p: ReshareParams<Dkls23KeyShare>): ProtocolParty<Dkls23KeyShare> {
    const ctx = DKLS23_PROTOCOLS.reshare;
    checkSessionId(p.sessionId, ctx);
    checkPartyId(p.partyId, ctx);
    const oldParties = checkCommittee(p.oldParties, ctx);
    const newParties = checkCommittee(p.newParties, ctx);
    const info = p.info;
    if (oldParties.length < info.threshold)
      throw new TypeError(`${ctx}: need at least ${info.threshold} old parties`);
    for (const o of oldParties)
      if (!info.parties.includes(o)) throw new TypeError(`${ctx}: ${o} not in old committee`);
    if (newParties.length < 2 || p.newThreshold < 2 || p.newThreshold > newParties.length) {
      throw new TypeError(`${ctx}: bad new committee or threshold`);
    }
    const isOld = oldParties.includes(p.partyId);
    if (!isOld && !newParties.includes(p.partyId))
      throw new TypeError(`${ctx}: party ${p.partyId} not involved`);
    let share: Dkls23KeyShare | undefined;
    let publicShares = p.share ? asShare(p.share, ctx).publicShares : undefined;
    if (isOld) {
      share = asShare(p.share as KeyShare, ctx);
      if (!share.active || share.partyId !== p.partyId) throw new TypeError(`${ctx}: old share required`);
      if (!Buffer.from(share.info.publicKey).equals(Buffer.from(info.publicKey))) {
        throw new TypeError(`${ctx}: share is for another key`);
      }
    }
    if (!publicShares) {
      // New parties learn the old public shares from the coordinator with the info (public data).
      const ps = (info as PublicKeyInfo & { publicShares?: ReadonlyMap<number, Uint8Array> }).publicShares;
      if (!ps) throw new TypeError(`${ctx}: new parties need info.publicShares (public data of the old key)`);
      publicShares = ps;
    }
    return new KeygenParty({
      protocol: 'dkls23/reshare',
      sessionId: p.sessionId,
      partyId: p.partyId,
      dealers: oldParties,
      receivers: newParties,
      threshold: p.newThreshold,
      old: {
        ...(share ? { share } : {}),
        publicKey: info.publicKey,
        chainCode: info.chainCode,
        publicShares,
      },
    });
  },

  derivePublicKey(info: PublicKeyInfo, path: string): Uint8Array {
    return deriveSecp256k1(info.publicKey, info.chainCode, path).publicKey;
  },

  verify(publicKey: Uint8Array, message: Uint8Array, signature: SchemeSignature): boolean {
    if (!(message instanceof Uint8Array) || message.length !== 32) return false;
    if (!(signature?.signature instanceof Uint8Array) || signature.signature.length !== 64) return false;
    try {
      return secp256k1.verify(signature.signature, message, publicKey, { prehash: false, lowS: true });
    } catch {
      return false;
    }
  },

  exportShareForStorage(share: Dkls23KeyShare): Uint8Array {
    return exportShare(asShare(share, 'dkls23/exportShareForStorage'));
  },

  importShareFromStorage(bytes: Uint8Array): Dkls23KeyShare {
    return importShare(bytes);
  },
};

/** Public info of a key including the public shares, which new parties need for a reshare. */
export function reshareInfo(
  share: Dkls23KeyShare,
): PublicKeyInfo & { publicShares: ReadonlyMap<number, Uint8Array> } {
  return { ...share.info, publicShares: share.publicShares };
}

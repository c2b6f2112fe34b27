// ThresholdScheme objects for FROST: one generic implementation, one thin instance per ciphersuite.

import { xpubOf } from '../hd.ts';
import type {
  DkgParams,
  ProtocolParty,
  PublicKeyInfo,
  RefreshParams,
  ReshareParams,
  SchemeSignature,
  ThresholdScheme,
} from '../threshold.ts';
import { FrostDkgParty } from './dkg.ts';
import { FrostReshareParty } from './reshare.ts';
import { exportShare, FrostKeyShare, importShare, SigningNonce } from './share.ts';
import type { FrostSignParams } from './sign.ts';
import { FrostSignParty, signingKey } from './sign.ts';
import type { FrostSuite } from './suites.ts';
import { bip340Suite, ed25519Suite } from './suites.ts';

export interface FrostScheme extends ThresholdScheme<FrostKeyShare> {
  readonly suite: FrostSuite;
  dkg(params: DkgParams): ProtocolParty<FrostKeyShare>;
  sign(params: FrostSignParams): ProtocolParty<SchemeSignature>;
  /**
   * RFC 9591 §5.1 preprocessing: a nonce commitment made before the message is known, to pass as
   * FrostSignParams.nonce. Single-use. `randomness` needs allowInjectedRandomness (test vectors only).
   */
  commitNonce(
    share: FrostKeyShare,
    opts?: { allowInjectedRandomness: true; randomness: [Uint8Array, Uint8Array] },
  ): SigningNonce;
}

export interface FrostBip340Scheme extends FrostScheme {
  /** BIP32 xpub (mainnet version) of the root key 02||x and the DKG chain code. */
  xpub(info: PublicKeyInfo): string;
  /** BIP341 output key (x-only) for the key at `path` with the given script tree root (empty = BIP86). */
  taprootOutputKey(info: PublicKeyInfo, path: string, merkleRoot: Uint8Array): Uint8Array;
}

function checkInfo(suite: FrostSuite, info: PublicKeyInfo): void {
  if (!info || info.scheme !== suite.scheme) throw new Error(`${suite.label}: info is for another scheme`);
}

export function createFrostScheme(suite: FrostSuite): FrostScheme {
  return Object.freeze({
    name: suite.scheme,
    suite,
    dkg: (params: DkgParams) => new FrostDkgParty(suite, params),
    sign: (params: FrostSignParams) => new FrostSignParty(suite, params),
    refresh: (params: RefreshParams<FrostKeyShare>) => {
      const share = params.share;
      if (!(share instanceof FrostKeyShare))
        throw new Error(`${suite.label}/refresh: share must be a FrostKeyShare`);
      // Refresh = reshare to the same committee and threshold, with every party dealing.
      return new FrostReshareParty(
        suite,
        {
          sessionId: params.sessionId,
          partyId: share.partyId,
          share,
          info: share.info,
          oldParties: share.info.parties,
          newParties: share.info.parties,
          newThreshold: share.info.threshold,
        },
        'refresh',
      );
    },
    reshare: (params: ReshareParams<FrostKeyShare>) => new FrostReshareParty(suite, params, 'reshare'),
    derivePublicKey: (info: PublicKeyInfo, path: string) => {
      checkInfo(suite, info);
      return suite.encodePublicKey(
        suite.derive(suite.decodePublicKey(info.publicKey), info.chainCode, path).point,
      );
    },
    verify: (publicKey: Uint8Array, message: Uint8Array, sig: SchemeSignature) =>
      suite.verify(publicKey, message, sig.signature),
    exportShareForStorage: (share: FrostKeyShare) => {
      if (!(share instanceof FrostKeyShare) || share.suiteId !== suite.id) {
        throw new Error(`${suite.label}: not a share of this scheme`);
      }
      return exportShare(share);
    },
    importShareFromStorage: (bytes: Uint8Array) => importShare(bytes, suite),
    commitNonce: (
      share: FrostKeyShare,
      opts?: { allowInjectedRandomness: true; randomness: [Uint8Array, Uint8Array] },
    ) => {
      if (!(share instanceof FrostKeyShare) || share.suiteId !== suite.id) {
        throw new Error(`${suite.label}: not a share of this scheme`);
      }
      return SigningNonce.commit(share, opts);
    },
  });
}

/** Threshold Ed25519 (Solana and other EdDSA chains): FROST(Ed25519, SHA-512), RFC 8032 signatures. */
export const frostEd25519: FrostScheme = createFrostScheme(ed25519Suite);

const bip340Base = createFrostScheme(bip340Suite);

/** Threshold BIP340 Schnorr (Bitcoin Taproot): FROST(secp256k1, SHA-256) with BIP340 challenge. */
export const frostBip340: FrostBip340Scheme = Object.freeze({
  ...bip340Base,
  xpub: (info: PublicKeyInfo) => {
    checkInfo(bip340Suite, info);
    return xpubOf(bip340Suite.decodePublicKey(info.publicKey).toBytes(true), info.chainCode);
  },
  taprootOutputKey: (info: PublicKeyInfo, path: string, merkleRoot: Uint8Array) => {
    checkInfo(bip340Suite, info);
    const root = bip340Suite.decodePublicKey(info.publicKey);
    return signingKey(bip340Suite, [root], info.chainCode, path, { merkleRoot }).signingPublicKey;
  },
});

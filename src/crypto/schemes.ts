// Every threshold scheme by name. The node, the coordinator and the demo choose a scheme here and
// drive it only through the ThresholdScheme interface.
import { dkls23Ecdsa } from './dkls23/index.ts';
import { frostBip340, frostEd25519 } from './frost/index.ts';
import type { KeyShare, SchemeName, ThresholdScheme } from './threshold.ts';

export const SCHEMES: Record<SchemeName, ThresholdScheme<KeyShare>> = {
  'ecdsa-secp256k1': dkls23Ecdsa as unknown as ThresholdScheme<KeyShare>,
  'eddsa-ed25519': frostEd25519 as unknown as ThresholdScheme<KeyShare>,
  'schnorr-bip340': frostBip340 as unknown as ThresholdScheme<KeyShare>,
};

export function isSchemeName(s: string): s is SchemeName {
  return Object.hasOwn(SCHEMES, s);
}

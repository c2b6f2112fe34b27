// The threshold schemes a node can drive, by name. Loaded lazily so the node runs with whichever
// schemes are present in src/crypto; the node never branches on the algorithm beyond this lookup
// (and `presign` being present).
import type { SchemeName, ThresholdScheme } from '../crypto/threshold.ts';
import { MpcError } from '../errors.ts';

// Specifiers in variables: the modules are optional at type-check time.
const FROST = '../crypto/frost/index.ts';
const DKLS23 = '../crypto/dkls23/index.ts';

let loaded: Promise<Map<SchemeName, ThresholdScheme>> | undefined;

async function load(): Promise<Map<SchemeName, ThresholdScheme>> {
  const out = new Map<SchemeName, ThresholdScheme>();
  try {
    const f = (await import(FROST)) as { frostEd25519?: ThresholdScheme; frostBip340?: ThresholdScheme };
    if (f.frostEd25519) out.set('eddsa-ed25519', f.frostEd25519);
    if (f.frostBip340) out.set('schnorr-bip340', f.frostBip340);
  } catch {
    // not available in this build
  }
  try {
    const d = (await import(DKLS23)) as { dkls23Ecdsa?: ThresholdScheme };
    if (d.dkls23Ecdsa) out.set('ecdsa-secp256k1', d.dkls23Ecdsa);
  } catch {
    // not available in this build
  }
  return out;
}

export function availableSchemes(): Promise<Map<SchemeName, ThresholdScheme>> {
  loaded ??= load();
  return loaded;
}

export async function getScheme(name: string): Promise<ThresholdScheme> {
  const s = (await availableSchemes()).get(name as SchemeName);
  if (!s) {
    const have = [...(await availableSchemes()).keys()].join(', ') || 'none';
    throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `scheme ${name} is not available (available: ${have})`);
  }
  return s;
}

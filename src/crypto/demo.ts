// One-process threshold run for checks and demos (`custos mpc demo`): DKG among n parties, then
// (ECDSA) presign + one-round sign, or (FROST) two-round sign, by a chosen t-subset, optionally under
// a derivation path. The signature is verified by the scheme before it is returned.
import { randomBytes } from 'node:crypto';
import { xpubOf } from './hd.ts';
import { runLocalProtocol } from './local-runner.ts';
import { SCHEMES } from './schemes.ts';
import type { KeyShare, PartyId, Presignature, SchemeName, SchemeSignature } from './threshold.ts';

export interface DemoParameters {
  scheme: SchemeName;
  threshold: number;
  parties: number;
  /** ECDSA: the 32-byte digest; FROST: the message. */
  message: Uint8Array;
  derivationPath?: string;
  /** Default: parties 1..threshold. */
  signers?: PartyId[];
}

export interface DemoReturnType {
  scheme: SchemeName;
  threshold: number;
  parties: number;
  signers: PartyId[];
  publicKey: Uint8Array;
  xpub?: string;
  derivationPath: string | null;
  signature: SchemeSignature;
  timingsMs: { dkg: number; presign?: number; sign: number };
}

const sid = () => randomBytes(32).toString('hex');

export function runThresholdDemo(p: DemoParameters): DemoReturnType {
  const scheme = SCHEMES[p.scheme];
  const all = Array.from({ length: p.parties }, (_, i) => i + 1);
  const signers = p.signers ?? all.slice(0, p.threshold);

  let t0 = performance.now();
  const dkgSession = sid();
  const shares = runLocalProtocol(
    all.map((id) => scheme.dkg({ sessionId: dkgSession, partyId: id, parties: all, threshold: p.threshold })),
  );
  const dkg = performance.now() - t0;
  const shareOf = (id: PartyId): KeyShare => shares.get(id)!;
  const info = shareOf(signers[0]!).info;

  let presign: number | undefined;
  let presigs: Map<PartyId, Presignature> | undefined;
  if (scheme.presign) {
    t0 = performance.now();
    const presignSession = sid();
    presigs = runLocalProtocol(
      signers.map((id) => scheme.presign!({ sessionId: presignSession, share: shareOf(id), signers })),
    );
    presign = performance.now() - t0;
  }

  t0 = performance.now();
  const signSession = sid();
  const results = runLocalProtocol(
    signers.map((id) =>
      scheme.sign({
        sessionId: signSession,
        share: shareOf(id),
        signers,
        message: p.message,
        ...(p.derivationPath ? { derivationPath: p.derivationPath } : {}),
        ...(presigs ? { presignature: presigs.get(id)! } : {}),
      }),
    ),
  );
  const sign = performance.now() - t0;
  const signature = results.get(signers[0]!)!;
  if (!scheme.verify(signature.signingPublicKey, p.message, signature)) {
    throw new Error('demo: the combined signature does not verify');
  }
  for (const s of shares.values()) (s as { destroy?: () => void }).destroy?.();

  return {
    scheme: p.scheme,
    threshold: p.threshold,
    parties: p.parties,
    signers,
    publicKey: info.publicKey,
    ...(p.scheme === 'ecdsa-secp256k1' ? { xpub: xpubOf(info.publicKey, info.chainCode) } : {}),
    derivationPath: p.derivationPath ?? null,
    signature,
    timingsMs: {
      dkg: round(dkg),
      ...(presign !== undefined ? { presign: round(presign) } : {}),
      sign: round(sign),
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

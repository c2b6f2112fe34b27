// Helpers for the FROST tests and benchmark: run whole protocols through the local runner.
import { createPublicKey, verify as opensslVerify, randomBytes } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { type RunOptions, runLocalProtocol } from '../local-runner.ts';
import type { PartyId, ProtocolParty, SchemeSignature } from '../threshold.ts';
import type { FrostScheme } from './scheme.ts';
import type { FrostKeyShare } from './share.ts';
import type { FrostSignParams } from './sign.ts';

export const newSessionId = (): string => randomBytes(32).toString('hex');

export const range = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => i + from);

/** Orders parties so that `last` is processed last by the runner (see the adversarial tests). */
export function orderLast<T extends { partyId: PartyId }>(parties: T[], last?: PartyId): T[] {
  if (last === undefined) return parties;
  return [...parties.filter((p) => p.partyId !== last), ...parties.filter((p) => p.partyId === last)];
}

export function runDkg(
  scheme: FrostScheme,
  threshold: number,
  parties: number[],
  opts: RunOptions & { sessionId?: string; last?: PartyId } = {},
): Map<PartyId, FrostKeyShare> {
  const sessionId = opts.sessionId ?? newSessionId();
  const ps = parties.map((partyId) => scheme.dkg({ sessionId, partyId, parties, threshold }));
  return runLocalProtocol(orderLast(ps, opts.last), opts);
}

export function runSign(
  scheme: FrostScheme,
  shares: Map<PartyId, FrostKeyShare>,
  signers: number[],
  message: Uint8Array,
  opts: RunOptions & {
    sessionId?: string;
    last?: PartyId;
    params?: Partial<FrostSignParams>;
    perParty?: (id: PartyId) => Partial<FrostSignParams>;
  } = {},
): SchemeSignature {
  const sessionId = opts.sessionId ?? newSessionId();
  const ps: ProtocolParty<SchemeSignature>[] = signers.map((id) =>
    scheme.sign({
      sessionId,
      share: shares.get(id)!,
      signers,
      message,
      ...opts.params,
      ...opts.perParty?.(id),
    }),
  );
  const out = runLocalProtocol(orderLast(ps, opts.last), opts);
  const sigs = [...out.values()];
  if (sigs.length !== signers.length) throw new Error('not every signer produced the signature');
  const first = sigs[0]!;
  for (const s of sigs) {
    if (Buffer.compare(s.signature, first.signature) !== 0)
      throw new Error('signers disagree on the signature');
  }
  return first;
}

export function runRefresh(
  scheme: FrostScheme,
  shares: Map<PartyId, FrostKeyShare>,
  opts: RunOptions & { sessionId?: string; last?: PartyId } = {},
): Map<PartyId, FrostKeyShare> {
  const sessionId = opts.sessionId ?? newSessionId();
  const ps = [...shares.values()].map((share) => scheme.refresh({ sessionId, share }));
  return runLocalProtocol(orderLast(ps, opts.last), opts);
}

export function runReshare(
  scheme: FrostScheme,
  shares: Map<PartyId, FrostKeyShare>,
  oldParties: number[],
  newParties: number[],
  newThreshold: number,
  opts: RunOptions & { sessionId?: string; last?: PartyId } = {},
): Map<PartyId, FrostKeyShare> {
  const sessionId = opts.sessionId ?? newSessionId();
  const info = [...shares.values()][0]!.info;
  const all = [...new Set([...oldParties, ...newParties])].sort((a, b) => a - b);
  const ps = all.map((partyId) =>
    scheme.reshare({
      sessionId,
      partyId,
      share: oldParties.includes(partyId) ? shares.get(partyId) : undefined,
      info,
      oldParties,
      newParties,
      newThreshold,
    }),
  );
  return runLocalProtocol(orderLast(ps, opts.last), opts);
}

/** OpenSSL (node:crypto) for Ed25519, noble schnorr.verify for BIP340 — never our own code. */
export function independentVerify(scheme: FrostScheme, sig: SchemeSignature, msg: Uint8Array): boolean {
  if (sig.signature.length !== 64 || sig.signingPublicKey.length !== 32) return false;
  if (scheme.name === 'eddsa-ed25519') {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(sig.signingPublicKey).toString('base64url') },
      format: 'jwk',
    });
    return opensslVerify(null, msg, key, sig.signature);
  }
  return schnorr.verify(sig.signature, msg, sig.signingPublicKey);
}

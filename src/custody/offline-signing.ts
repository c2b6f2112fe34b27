// Cold-vault withdrawals are signed on the offline cluster (DESIGN §1, "offline"): the platform
// exports a signing request, an operator carries it to the air-gapped host, `custos offline-signer
// sign` has the offline MPC nodes check it and sign, and the signatures file comes back by hand.
// The two file formats, and the check the platform makes of what comes back, live here; both sides
// use them. Nothing in either file is secret: the request is the same evidence online nodes get
// (intent, unsigned transaction, owner-signed policy, owner-endorsed approvals), the answer is
// signatures — but a signatures file is a signed transaction: import it or destroy it.
import { z } from 'zod';
import { recoverPublicKey, uncompressedPublicKey } from '../chains/keys.ts';
import { SCHEME_NAMES, type SchemeName } from '../crypto/threshold.ts';
import { CustodyError } from '../errors.ts';
import { type CustodyEvidence, custodyEvidenceSchema } from '../mpc/authorizers/custody-evidence.ts';
import { getScheme } from '../mpc/schemes.ts';

export const SIGNING_REQUEST_KIND = 'custos-offline-signing-request/v1';
export const OFFLINE_SIGNATURES_KIND = 'custos-offline-signatures/v1';

const hexOf = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `expected ${bytes} bytes of lower-case hex`);
const id = z.string().min(1).max(100);
const schemeName = z.enum(SCHEME_NAMES as [SchemeName, ...SchemeName[]]);
const path = z
  .string()
  .max(200)
  .regex(/^m(\/[0-9]{1,10})*$/, 'a non-hardened derivation path such as m/0/7');

export const signingRequestSchema = z
  .object({
    kind: z.literal(SIGNING_REQUEST_KIND),
    transactionId: id,
    orgId: id,
    vaultId: id,
    network: z.string().min(1).max(64),
    keyId: id,
    scheme: schemeName,
    derivationPath: path,
    /** The key the signatures must verify under (the address's child key), hex. */
    signingPublicKey: z.string().regex(/^([0-9a-f]{64}|[0-9a-f]{66})$/),
    /** The digests to sign, in order (hex); each must be a digest of evidence.unsignedTx. */
    digests: z
      .array(z.string().regex(/^([0-9a-f]{2}){1,4096}$/))
      .min(1)
      .max(16),
    evidence: custodyEvidenceSchema,
    exportedAt: z.string().max(40),
  })
  .strict();
export type SigningRequest = z.infer<typeof signingRequestSchema>;

export const offlineSignaturesSchema = z
  .object({
    kind: z.literal(OFFLINE_SIGNATURES_KIND),
    transactionId: id,
    intentHash: hexOf(32),
    keyId: id,
    derivationPath: path,
    signatures: z
      .array(
        z
          .object({
            digest: z.string().regex(/^([0-9a-f]{2}){1,4096}$/),
            signature: hexOf(64),
            recovery: z.union([z.literal(0), z.literal(1)]).optional(),
          })
          .strict(),
      )
      .min(1)
      .max(16),
    signers: z.array(z.number().int().min(1).max(255)).max(255).optional(),
    signedAt: z.string().max(40).optional(),
  })
  .strict();
export type OfflineSignatures = z.infer<typeof offlineSignaturesSchema>;

export interface SigningRequestInput {
  transactionId: string;
  orgId: string;
  vaultId: string;
  network: string;
  keyId: string;
  scheme: SchemeName;
  derivationPath: string;
  signingPublicKey: Uint8Array;
  digests: readonly Uint8Array[];
  evidence: CustodyEvidence;
  now?: Date;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function buildSigningRequest(i: SigningRequestInput): SigningRequest {
  return signingRequestSchema.parse({
    kind: SIGNING_REQUEST_KIND,
    transactionId: i.transactionId,
    orgId: i.orgId,
    vaultId: i.vaultId,
    network: i.network,
    keyId: i.keyId,
    scheme: i.scheme,
    derivationPath: i.derivationPath,
    signingPublicKey: hex(i.signingPublicKey),
    digests: i.digests.map(hex),
    evidence: i.evidence,
    exportedAt: (i.now ?? new Date()).toISOString(),
  });
}

function invalid(message: string, details?: Record<string, unknown>): CustodyError {
  return new CustodyError('CUSTOS_OFFLINE_SIGNATURE_INVALID', message, details ? { details } : {});
}

/**
 * Checks imported signatures against what the platform itself holds — the transaction's digests, in
 * order, and the public key of its source address — and returns them in the chain adapter's form.
 * Nothing in the file is trusted: an ECDSA recovery id must recover exactly that key.
 */
export async function verifyOfflineSignatures(
  doc: OfflineSignatures,
  expected: {
    transactionId: string;
    intentHash: string;
    keyId: string;
    derivationPath: string;
    scheme: string;
    signingPublicKey: Uint8Array;
    digests: readonly Uint8Array[];
  },
): Promise<{ signature: Uint8Array; recovery?: number }[]> {
  if (doc.transactionId !== expected.transactionId)
    throw invalid(`the signatures are for transaction ${doc.transactionId}`);
  if (doc.intentHash !== expected.intentHash)
    throw invalid('the signatures are for another intent (intentHash differs)');
  if (doc.keyId !== expected.keyId || doc.derivationPath !== expected.derivationPath)
    throw invalid('the signatures are for another key or derivation path');
  if (doc.signatures.length !== expected.digests.length)
    throw invalid(`${expected.digests.length} signature(s) expected, ${doc.signatures.length} given`);
  const scheme = await getScheme(expected.scheme);
  const out: { signature: Uint8Array; recovery?: number }[] = [];
  for (const [i, s] of doc.signatures.entries()) {
    const digest = expected.digests[i]!;
    if (s.digest !== hex(digest))
      throw invalid(`signature ${i}: not over this transaction's digest`, { index: i });
    const signature = new Uint8Array(Buffer.from(s.signature, 'hex'));
    const ok = scheme.verify(expected.signingPublicKey, digest, {
      signature,
      signingPublicKey: expected.signingPublicKey,
      ...(s.recovery !== undefined ? { recovery: s.recovery } : {}),
    });
    if (!ok) throw invalid(`signature ${i} does not verify under the source address's key`, { index: i });
    if (expected.scheme === 'ecdsa-secp256k1') {
      if (s.recovery === undefined) throw invalid(`signature ${i}: an ECDSA signature needs its recovery id`);
      const recovered = recoverPublicKey(digest, signature, s.recovery);
      if (!recovered || hex(recovered) !== hex(uncompressedPublicKey(expected.signingPublicKey)))
        throw invalid(`signature ${i}: the recovery id does not recover the source address's key`, {
          index: i,
        });
    }
    out.push({ signature, ...(s.recovery !== undefined ? { recovery: s.recovery } : {}) });
  }
  return out;
}

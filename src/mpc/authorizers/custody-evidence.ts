// The evidence a withdrawal's signing request carries to the MPC nodes, and the exact bytes each
// party signs. Shared by the control plane (src/custody, which assembles it) and the node-side
// authorizer (./custody-approvals.ts, which verifies it): pure functions, no I/O.
//
// Three kinds of signed statement, all Ed25519, all domain-separated:
//   - vault policy        signed by an organisation owner: which threshold keys belong to which
//                         vault of which org, its tier and how many approvals a withdrawal needs;
//   - approver endorsement signed by an owner: "this approver public key belongs to user U of org O";
//   - approval / rejection signed by an approver over the transaction's intentHash.
// Nodes trust only owner public keys they were given out of band (their own configuration), so a
// control plane that invents an approver key, a policy or an approval gets nothing signed.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ed25519VerifyHex } from '../../crypto/ed25519-openssl.ts';

export const CUSTODY_EVIDENCE_KIND = 'custody-withdrawal/v1';

/** Canonical JSON: object keys sorted at every level, no whitespace; bigint is refused. */
export function canonicalJson(value: unknown): string {
  if (
    value === null ||
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    typeof value === 'string'
  ) {
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new TypeError('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
}

/** The withdrawal intent: what approvers approve and nodes check. Amounts are decimal strings. */
export const intentSchema = z
  .object({
    v: z.literal(1),
    type: z.literal('withdrawal'),
    transactionId: z.string(),
    orgId: z.string(),
    vaultId: z.string(),
    walletId: z.string(),
    network: z.string(),
    asset: z.object({ symbol: z.string(), decimals: z.number().int(), contract: z.string().nullable() }),
    source: z.object({ address: z.string(), path: z.string() }),
    destination: z.string(),
    amount: z.string().regex(/^[0-9]+$/),
    feePolicy: z.object({ speed: z.enum(['normal', 'fast']), maxFee: z.string().regex(/^[0-9]+$/) }),
    memo: z.string(),
    initiator: z.object({ type: z.string(), id: z.string().nullable(), userId: z.string().nullable() }),
    createdAt: z.string(),
    expiresAt: z.string(),
  })
  .strict();
export type Intent = z.infer<typeof intentSchema>;

/** SHA-256 over a domain tag and the canonical intent, hex. */
export function intentHash(intent: Intent): string {
  return createHash('sha256').update('custos/intent/v1\0').update(canonicalJson(intent)).digest('hex');
}

export type Decision = 'approve' | 'reject';

/** What an approver signs (never the bare hash: an approval must not double as a rejection). */
export function approvalMessage(decision: Decision, hash: string): Uint8Array {
  return new TextEncoder().encode(`custos/transaction-approval/v1\n${decision}\n${hash}`);
}

export const vaultPolicySchema = z
  .object({
    v: z.literal(1),
    kind: z.literal('custody-vault-policy'),
    orgId: z.string(),
    vaultId: z.string(),
    tier: z.enum(['hot', 'warm', 'cold']),
    keyIds: z.array(z.string()).min(1),
    requiredApprovals: z.number().int().min(0).max(50),
    issuedAt: z.string(),
  })
  .strict();
export type VaultPolicyStatement = z.infer<typeof vaultPolicySchema>;

export const endorsementSchema = z
  .object({
    v: z.literal(1),
    kind: z.literal('custody-approver-endorsement'),
    orgId: z.string(),
    userId: z.string(),
    approverKeyId: z.string(),
    publicKey: z.string().regex(/^[0-9a-f]{64}$/),
    issuedAt: z.string(),
  })
  .strict();
export type EndorsementStatement = z.infer<typeof endorsementSchema>;

/**
 * An owner's definition of a token the organisation registered at run time: the nodes decode and
 * sign transfers of a contract they were not configured with only under this statement.
 */
export const assetEndorsementSchema = z
  .object({
    v: z.literal(1),
    kind: z.literal('custody-asset-endorsement'),
    orgId: z.string(),
    network: z.string(),
    symbol: z.string(),
    decimals: z.number().int().min(0).max(36),
    contract: z.string().min(1).max(128),
    issuedAt: z.string(),
  })
  .strict();
export type AssetEndorsementStatement = z.infer<typeof assetEndorsementSchema>;

/** Bytes an owner signs for a policy or an endorsement. */
export function statementMessage(
  statement: VaultPolicyStatement | EndorsementStatement | AssetEndorsementStatement,
): Uint8Array {
  return new TextEncoder().encode(`custos/governance/v1\n${statement.kind}\n${canonicalJson(statement)}`);
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const sig = z.string().regex(/^[0-9a-f]{128}$/);

export const custodyEvidenceSchema = z.object({
  kind: z.literal(CUSTODY_EVIDENCE_KIND),
  intent: intentSchema,
  intentHash: hex64,
  /** The unsigned transaction, JSON-safe (see toJsonSafe). */
  unsignedTx: z.unknown(),
  policy: z.object({ statement: vaultPolicySchema, signature: sig, ownerPublicKey: hex64 }),
  approvals: z
    .array(
      z.object({
        publicKey: hex64,
        signature: sig,
        endorsement: z.object({ statement: endorsementSchema, signature: sig, ownerPublicKey: hex64 }),
      }),
    )
    .max(50),
  /** Present when the intent's asset is a registered token (not in the nodes' configuration). */
  asset: z.object({ statement: assetEndorsementSchema, signature: sig, ownerPublicKey: hex64 }).optional(),
});
export type CustodyEvidence = z.infer<typeof custodyEvidenceSchema>;

/** Ed25519 over hex key and signature (OpenSSL); never throws. */
export const verifyEd25519 = ed25519VerifyHex;

/** JSON-safe form of values with bigint and Uint8Array (unsigned transactions, for DB and wire). */
export function toJsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toJsonSafe(v)]),
    );
  }
  return value;
}

export function fromJsonSafe<T>(value: unknown): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && typeof o['$bigint'] === 'string' && /^-?[0-9]+$/.test(o['$bigint'])) {
        return BigInt(o['$bigint']);
      }
      if (keys.length === 1 && typeof o['$bytes'] === 'string' && /^([0-9a-f]{2})*$/.test(o['$bytes'])) {
        return new Uint8Array(Buffer.from(o['$bytes'], 'hex'));
      }
      return Object.fromEntries(keys.map((k) => [k, walk(o[k])]));
    }
    return v;
  };
  return walk(value) as T;
}

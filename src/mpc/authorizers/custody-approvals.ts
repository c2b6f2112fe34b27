// Node-side authorizer for custody withdrawals (DESIGN §3 step 6): before this node contributes to
// a signature it checks, itself, from the evidence alone and its own trust anchors:
//   1. the vault policy is signed by an owner key this node trusts for the organisation, names the
//      key being used, and has the tier this node serves: an online node never signs for a cold
//      vault, and a node of the offline cluster (`offline: true`, `custos offline-signer`) signs
//      for cold vaults only;
//   2. intentHash is the hash of the intent, the intent is unexpired and belongs to that vault;
//   3. the unsigned transaction decodes (with this node's own chain decoder) to exactly the intent's
//      destination, asset and amount, and the digest requested is that transaction's digest, at the
//      intent's derivation path;
//   4. a warm or cold vault: at least policy.requiredApprovals (at least one) approvals over
//      intentHash by distinct users, none the initiator, each by an approver key endorsed by a
//      trusted owner and not on this node's list of revoked approver keys.
// Anything else is a deny (with the reason in the node's log); evidence of other kinds → abstain.
//
// Trust anchors (owner public keys per organisation) come from the node's own configuration — a
// JSON file in its data directory written by the node operator — never from the control plane.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { ChainAdapter, UnsignedTransaction } from '../../chains/types.ts';
import { ConfigError } from '../../errors.ts';
import type { AuthorizeDecision, AuthorizeRequest, Authorizer } from '../authorize.ts';
import {
  approvalMessage,
  CUSTODY_EVIDENCE_KIND,
  custodyEvidenceSchema,
  fromJsonSafe,
  intentHash,
  statementMessage,
  verifyEd25519,
} from './custody-evidence.ts';

export interface OwnerTrust {
  /** Owner public keys (Ed25519 hex) this node trusts for `orgId`. */
  ownerKeys(orgId: string): readonly string[];
  /**
   * Approver public keys (Ed25519 hex) this node's operator has revoked for `orgId`: their
   * approvals never count here, whatever endorsement the evidence carries. An endorsement has no
   * expiry, so this list (the node's own configuration, like the owner keys) is what makes a
   * revocation hold against a control plane that keeps presenting the old endorsement.
   */
  revokedApproverKeys(orgId: string): readonly string[];
}

export class MemoryOwnerTrust implements OwnerTrust {
  readonly #keys = new Map<string, Set<string>>();
  readonly #revoked = new Map<string, Set<string>>();
  trust(orgId: string, publicKeyHex: string): void {
    addTo(this.#keys, orgId, publicKeyHex);
  }
  revokeApprover(orgId: string, publicKeyHex: string): void {
    addTo(this.#revoked, orgId, publicKeyHex);
  }
  ownerKeys(orgId: string): readonly string[] {
    return [...(this.#keys.get(orgId) ?? [])];
  }
  revokedApproverKeys(orgId: string): readonly string[] {
    return [...(this.#revoked.get(orgId) ?? [])];
  }
}

function addTo(m: Map<string, Set<string>>, orgId: string, publicKeyHex: string): void {
  const s = m.get(orgId) ?? new Set<string>();
  s.add(publicKeyHex.toLowerCase());
  m.set(orgId, s);
}

const keyList = z.record(z.string(), z.array(z.string().regex(/^[0-9a-fA-F]{64}$/)));
/** The node's trust file: `{"orgs": {org: [owner key…]}, "revokedApprovers": {org: [approver key…]}}`. */
export const trustFileSchema = z
  .object({ orgs: keyList.default({}), revokedApprovers: keyList.default({}) })
  .strict();
export type TrustFile = z.infer<typeof trustFileSchema>;

/** Reads and validates a trust file; a missing file is an empty one. Throws on a malformed file. */
export function readTrustFile(path: string): TrustFile {
  if (!existsSync(path)) return { orgs: {}, revokedApprovers: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError('CUSTOS_CONFIG_INVALID', `${path}: not JSON (${(e as Error).message})`);
  }
  const parsed = trustFileSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ConfigError(
      'CUSTOS_CONFIG_INVALID',
      `${path}: ${i?.path.join('.') || '(root)'}: ${i?.message}`,
    );
  }
  return parsed.data;
}

/** The trust file, re-read when it changes. A malformed file throws: the node then signs nothing. */
export class FileOwnerTrust implements OwnerTrust {
  #mtime = -1;
  #file: TrustFile = { orgs: {}, revokedApprovers: {} };
  constructor(readonly path: string) {}
  #load(): TrustFile {
    if (!existsSync(this.path)) return { orgs: {}, revokedApprovers: {} };
    const m = statSync(this.path).mtimeMs;
    if (m !== this.#mtime) {
      this.#file = readTrustFile(this.path);
      this.#mtime = m;
    }
    return this.#file;
  }
  ownerKeys(orgId: string): readonly string[] {
    return (this.#load().orgs[orgId] ?? []).map((k) => k.toLowerCase());
  }
  revokedApproverKeys(orgId: string): readonly string[] {
    return (this.#load().revokedApprovers[orgId] ?? []).map((k) => k.toLowerCase());
  }
}

export interface CustodyAuthorizerOptions {
  trust: OwnerTrust;
  /** This node's own decoder for a network (explainTransaction is local, no RPC). */
  chains: (
    network: string,
    token?: { symbol: string; decimals: number; contract: string },
  ) => Pick<ChainAdapter, 'explainTransaction'> | undefined;
  now?: () => number;
  /** A node of the offline cluster: signs for cold vaults only (default: online, never cold). */
  offline?: boolean;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function custodyApprovalAuthorizer(opts: CustodyAuthorizerOptions): Authorizer {
  const now = opts.now ?? Date.now;
  return (req: AuthorizeRequest): AuthorizeDecision => {
    if (req.type !== 'sign' || req.authorization?.kind !== CUSTODY_EVIDENCE_KIND)
      return { decision: 'abstain' };
    const deny = (reason: string): AuthorizeDecision => ({ decision: 'deny', reason: `custody: ${reason}` });
    const parsed = custodyEvidenceSchema.safeParse(req.authorization);
    if (!parsed.success) return deny(`malformed evidence (${parsed.error.issues[0]?.path.join('.')})`);
    const ev = parsed.data;
    const { intent, policy } = ev;

    // 1. The vault policy, signed by a trusted owner.
    const owners = new Set(opts.trust.ownerKeys(policy.statement.orgId));
    if (!owners.has(policy.ownerPublicKey))
      return deny('vault policy not signed by an owner this node trusts');
    if (!verifyEd25519(policy.ownerPublicKey, statementMessage(policy.statement), policy.signature)) {
      return deny('vault policy signature is invalid');
    }
    if (!policy.statement.keyIds.includes(req.keyId))
      return deny(`key ${req.keyId} is not in the vault policy`);
    if (opts.offline === true) {
      if (policy.statement.tier !== 'cold') return deny('this offline cluster signs for cold vaults only');
    } else if (policy.statement.tier === 'cold') return deny('cold vault keys sign offline only');

    // 2. The intent.
    if (intentHash(intent) !== ev.intentHash) return deny('intentHash does not match the intent');
    if (intent.orgId !== policy.statement.orgId || intent.vaultId !== policy.statement.vaultId) {
      return deny('intent belongs to another vault');
    }
    if (Date.parse(intent.expiresAt) <= now()) return deny('intent expired');

    // 3. The transaction is the intent, and the digest is the transaction's. A token the node was
    // not configured with decodes only under an owner's endorsement of exactly the intent's asset.
    let token: { symbol: string; decimals: number; contract: string } | undefined;
    if (ev.asset) {
      const a = ev.asset;
      if (!owners.has(a.ownerPublicKey))
        return deny('asset endorsement not signed by an owner this node trusts');
      if (!verifyEd25519(a.ownerPublicKey, statementMessage(a.statement), a.signature)) {
        return deny('asset endorsement signature is invalid');
      }
      const st = a.statement;
      if (
        st.orgId !== intent.orgId ||
        st.network !== intent.network ||
        st.symbol !== intent.asset.symbol ||
        st.decimals !== intent.asset.decimals ||
        st.contract !== intent.asset.contract
      ) {
        return deny('asset endorsement is not the intent asset');
      }
      token = { symbol: st.symbol, decimals: st.decimals, contract: st.contract };
    }
    let chain: Pick<ChainAdapter, 'explainTransaction'> | undefined;
    try {
      chain = opts.chains(intent.network, token);
    } catch (e) {
      return deny(`endorsed asset clashes with this node's configuration: ${(e as Error).message}`);
    }
    if (!chain) return deny(`no decoder for network ${intent.network} on this node`);
    let tx: UnsignedTransaction;
    try {
      tx = fromJsonSafe<UnsignedTransaction>(ev.unsignedTx);
      const s = chain.explainTransaction(tx);
      if (
        s.network !== intent.network ||
        s.to !== intent.destination ||
        s.from !== intent.source.address ||
        s.asset.symbol !== intent.asset.symbol ||
        s.asset.contract !== intent.asset.contract ||
        s.amount !== BigInt(intent.amount) ||
        s.maxFee > BigInt(intent.feePolicy.maxFee)
      ) {
        return deny('transaction does not match the intent');
      }
    } catch (e) {
      return deny(`transaction does not decode: ${(e as Error).message}`);
    }
    const message = req.message ? hex(req.message) : '';
    if (!tx.digests.some((d) => hex(d.digest) === message))
      return deny('requested digest is not the transaction digest');
    if ((req.derivationPath ?? 'm') !== intent.source.path)
      return deny('derivation path is not the intent source path');

    // 4. Approvals.
    const required = policy.statement.tier === 'hot' ? 0 : Math.max(1, policy.statement.requiredApprovals);
    const users = new Set<string>();
    const revoked = new Set(opts.trust.revokedApproverKeys(intent.orgId));
    const msg = approvalMessage('approve', ev.intentHash);
    for (const a of ev.approvals) {
      const e = a.endorsement;
      if (revoked.has(a.publicKey)) continue;
      if (!owners.has(e.ownerPublicKey)) continue;
      if (e.statement.orgId !== intent.orgId || e.statement.publicKey !== a.publicKey) continue;
      if (!verifyEd25519(e.ownerPublicKey, statementMessage(e.statement), e.signature)) continue;
      if (intent.initiator.userId !== null && e.statement.userId === intent.initiator.userId) continue;
      if (!verifyEd25519(a.publicKey, msg, a.signature)) continue;
      users.add(e.statement.userId);
    }
    if (users.size < required) {
      return deny(`${users.size} valid approval(s) by owner-endorsed approvers, ${required} required`);
    }
    return { decision: 'allow', by: 'custody-approvals' };
  };
}

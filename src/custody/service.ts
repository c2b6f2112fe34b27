// Custody services: the asset registry, vaults and their threshold keys (key ceremonies through the
// MPC coordinator), owner-signed governance (vault policies, approver endorsements), wallets and HD
// addresses, balances. Withdrawals live in ./withdrawals.ts, the chain watcher in ./watcher.ts.
// Every state change writes its audit entry in the same database transaction (fail closed).
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { AuditLog } from '../audit/log.ts';
import type { Asset, ChainAdapter } from '../chains/types.ts';
import { Lru } from '../crypto/lru.ts';
import type { PublicKeyInfo, SchemeName } from '../crypto/threshold.ts';
import { CustodyError, NotFoundError, ValidationError } from '../errors.ts';
import type { Principal, RequestContext } from '../identity/principal.ts';
import type { Logger } from '../log/logger.ts';
import {
  type AssetEndorsementStatement,
  type CustodyEvidence,
  type EndorsementStatement,
  statementMessage,
  type VaultPolicyStatement,
  verifyEd25519,
} from '../mpc/authorizers/custody-evidence.ts';
import { type MpcCoordinator, xpubFor } from '../mpc/client.ts';
import type { KeyRecord } from '../mpc/registry.ts';
import { getScheme } from '../mpc/schemes.ts';
import { checkKeyId } from '../mpc/share-store.ts';
import {
  type AddressRow,
  AssetRepository,
  type AssetRow,
  EndorsementRepository,
  LedgerRepository,
  type Scope,
  type VaultKeyRow,
  VaultRepository,
  type VaultRow,
  WalletRepository,
  type WalletRow,
} from '../store/repositories/custody.ts';
import { ApproverKeyRepository, UserRepository } from '../store/repositories/identity.ts';
import type { Database } from '../store/schema.ts';
import { type BalanceView, balanceViews } from './ledger.ts';

export type Tier = 'hot' | 'warm' | 'cold';

export interface CustodyDeps {
  db: Kysely<Database>;
  audit: AuditLog;
  coordinator: MpcCoordinator;
  /** Chain adapters by network id. */
  chains: ReadonlyMap<string, ChainAdapter>;
  logger: Logger;
}

export const assetId = (network: string, symbol: string): string => `${network}:${symbol}`;

export interface AssetView {
  id: string;
  network: string;
  symbol: string;
  decimals: number;
  kind: string;
  contract: string | null;
  /** Registered by the organisation (POST /v1/assets), not configured on the nodes. */
  registered: boolean;
  /** A registered token an owner has endorsed: the MPC nodes sign transfers of it. */
  endorsed: boolean;
}

export interface VaultKeyView {
  keyId: string;
  vaultId: string;
  scheme: string;
  threshold: number;
  parties: number[];
  publicKey: string;
  xpub: string | null;
  generation: number;
}

export interface VaultView {
  id: string;
  orgId: string;
  name: string;
  tier: Tier;
  threshold: number;
  parties: number;
  requiredApprovals: number;
  keys: VaultKeyView[];
  policy: VaultPolicyStatement;
  policySigned: boolean;
  policySignerKey: string | null;
  createdAt: string;
}

export interface WalletView {
  id: string;
  orgId: string;
  vaultId: string;
  network: string;
  name: string;
  scheme: string;
  keyId: string;
  account: number;
  hotLimit: string | null;
  createdAt: string;
}

export interface AddressView {
  id: string;
  walletId: string;
  network: string;
  address: string;
  path: string;
  index: number;
  label: string | null;
  createdAt: string;
}

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

export function assetView(a: AssetRow): AssetView {
  return {
    id: a.id,
    network: a.network,
    symbol: a.symbol,
    decimals: a.decimals,
    kind: a.kind,
    contract: a.contract,
    registered: a.org_id !== null,
    endorsed: a.org_id !== null && a.endorsement_signature !== null,
  };
}
function keyView(k: VaultKeyRow): VaultKeyView {
  return {
    keyId: k.key_id,
    vaultId: k.vault_id,
    scheme: k.scheme,
    threshold: k.threshold,
    parties: k.parties,
    publicKey: k.public_key,
    xpub: k.xpub,
    generation: k.generation,
  };
}
function vaultView(v: VaultRow, keys: VaultKeyRow[]): VaultView {
  return {
    id: v.id,
    orgId: v.org_id,
    name: v.name,
    tier: v.tier as Tier,
    threshold: v.threshold,
    parties: v.parties,
    requiredApprovals: v.required_approvals,
    keys: keys.map(keyView),
    policy: v.policy as unknown as VaultPolicyStatement,
    policySigned: v.policy_signature !== null,
    policySignerKey: v.policy_signer_key,
    createdAt: v.created_at.toISOString(),
  };
}
export function walletView(w: WalletRow): WalletView {
  return {
    id: w.id,
    orgId: w.org_id,
    vaultId: w.vault_id,
    network: w.network,
    name: w.name,
    scheme: w.scheme,
    keyId: w.key_id,
    account: w.account,
    hotLimit: w.hot_limit === null ? null : w.hot_limit.toString(),
    createdAt: w.created_at.toISOString(),
  };
}
export function addressView(a: AddressRow): AddressView {
  return {
    id: a.id,
    walletId: a.wallet_id,
    network: a.network,
    address: a.address,
    path: a.path,
    index: a.index,
    label: a.label,
    createdAt: a.created_at.toISOString(),
  };
}

function notFound(what: string): NotFoundError {
  return new NotFoundError('CUSTOS_NOT_FOUND', `${what} not found`);
}

export class CustodyService {
  /** Public key and chain code per key id (immutable once the key exists; only they are used). */
  readonly #keyInfo = new Lru<string, PublicKeyInfo>(1024);
  /** Asset rows by id (assets are only ever added). */
  readonly #assets = new Lru<string, AssetRow>(1024);

  constructor(readonly deps: CustodyDeps) {}

  get db(): Kysely<Database> {
    return this.deps.db;
  }

  /**
   * A custody write transaction. Every one of them records audit entries, which are written at its
   * end, just before commit, under the installation-wide audit head lock (AuditLog.transaction):
   * custody writes run concurrently until then, and the lock is the last one each takes, so none
   * can deadlock on it. Account rows are locked in account-id order (Ledger), so concurrent writes
   * never deadlock on each other either.
   */
  write<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.deps.audit.transaction(this.db, fn);
  }

  chain(network: string): ChainAdapter {
    const c = this.deps.chains.get(network);
    if (!c) throw new CustodyError('CUSTOS_CHAIN_UNSUPPORTED', `network ${network} is not configured`);
    return c;
  }

  schemeOf(network: string): SchemeName {
    return this.chain(network).signingScheme ?? 'ecdsa-secp256k1';
  }

  /** Seeds the asset registry from the configured chains and re-registers vault keys with the coordinator. */
  async start(): Promise<void> {
    const repo = new AssetRepository(this.db);
    for (const c of this.deps.chains.values()) {
      for (const a of c.assets) {
        await repo.insertIfMissing({
          id: assetId(a.network, a.symbol),
          network: a.network,
          symbol: a.symbol,
          decimals: a.decimals,
          kind: a.kind,
          contract: a.contract,
          created_by: null,
        });
      }
    }
    await this.syncRegisteredTokens();
    const reg = this.deps.coordinator.registry;
    for (const k of await new VaultRepository(this.db).allKeys()) {
      // Cold vaults' keys are offline: the online coordinator must not know them.
      if (k.tier === 'cold' || reg.get(k.key_id)) continue;
      reg.put({
        keyId: k.key_id,
        scheme: k.scheme as SchemeName,
        threshold: k.threshold,
        parties: k.parties,
        publicKey: k.public_key,
        chainCode: k.chain_code,
        ...(k.xpub ? { xpub: k.xpub } : {}),
        allowRawSigning: false,
        generation: k.generation,
        createdAt: k.created_at.toISOString(),
      });
    }
  }

  // ---------- assets ----------

  readonly #tokenWarnings = new Set<string>();

  /**
   * Registers the tokens organisations added with `POST /v1/assets` with their networks' adapters,
   * so they can be withdrawn, scanned for and decoded; idempotent and cheap (one query), called at
   * start, by every watcher tick (a watcher process sees tokens another process registered) and
   * lazily by withdrawals. Returns the owner organisation per registered symbol of `network`.
   */
  async syncRegisteredTokens(network?: string): Promise<Map<string, string>> {
    let q = this.db
      .selectFrom('assets')
      .selectAll()
      .where('org_id', 'is not', null)
      .where('kind', '=', 'token');
    if (network) q = q.where('network', '=', network);
    const owners = new Map<string, string>();
    for (const a of await q.execute()) {
      const c = this.deps.chains.get(a.network);
      if (!c || a.contract === null) continue;
      if (a.network === network) owners.set(a.symbol, a.org_id!);
      try {
        c.registerToken({ symbol: a.symbol, decimals: a.decimals, contract: a.contract });
      } catch (e) {
        if (!this.#tokenWarnings.has(a.id)) {
          this.#tokenWarnings.add(a.id);
          this.deps.logger.warn({ asset: a.id, err: e }, 'registered token not usable on its network');
        }
      }
    }
    return owners;
  }

  /** The adapter's asset for a registry row; a token another replica registered is added on first use. */
  chainAsset(row: Pick<AssetRow, 'network' | 'symbol' | 'decimals' | 'kind' | 'contract'>): Asset {
    const c = this.chain(row.network);
    const known = c.assets.find((a) => a.symbol === row.symbol);
    if (known) return known;
    if (row.kind !== 'token' || row.contract === null) return c.asset(row.symbol); // throws: unknown
    return c.registerToken({ symbol: row.symbol, decimals: row.decimals, contract: row.contract });
  }

  async listAssets(p: Principal, network?: string): Promise<AssetView[]> {
    return (await new AssetRepository(this.db).list(p.orgId, network)).map(assetView);
  }

  /** An asset `orgId` may use: a configured one or one it registered itself. */
  async asset(id: string, orgId: string): Promise<AssetRow> {
    let a = this.#assets.get(id);
    if (!a) {
      a = await new AssetRepository(this.db).get(id);
      if (!a) throw notFound(`asset ${id}`);
      this.#assets.set(id, a);
    }
    if (a.org_id !== null && a.org_id !== orgId) throw notFound(`asset ${id}`);
    return { ...a };
  }

  async createAsset(
    p: Principal,
    ctx: RequestContext,
    input: { network: string; symbol: string; decimals: number; contract: string | null },
  ): Promise<AssetView> {
    const chain = this.chain(input.network);
    await this.syncRegisteredTokens(input.network); // contracts other replicas registered
    let contract = input.contract;
    if (contract !== null) {
      const v = chain.validateAddress(contract);
      if (!v.valid) throw new ValidationError('CUSTOS_CHAIN_INVALID_ADDRESS', `contract: ${v.reason}`);
      contract = v.address!;
      // One contract, one asset: refused before anything is written (the message names no owner).
      const taken = contract;
      if (chain.assets.some((a) => a.contract === taken)) {
        throw new CustodyError(
          'CUSTOS_CONFLICT',
          `contract ${taken} is already an asset on ${input.network}`,
        );
      }
    }
    const view = await this.write(async (trx) => {
      const repo = new AssetRepository(trx);
      const id = assetId(input.network, input.symbol);
      const created = await repo.insertIfMissing({
        id,
        network: input.network,
        symbol: input.symbol,
        decimals: input.decimals,
        kind: contract === null ? 'native' : 'token',
        contract,
        org_id: p.orgId,
        created_by: p.userId,
      });
      // Ids are global (network:symbol): a symbol another organisation registered is taken too, and
      // the answer does not say whose it is.
      if (!created) throw new CustodyError('CUSTOS_CONFLICT', `asset ${id} already exists`);
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'asset.create',
        target: { type: 'asset', id },
        requestId: ctx.requestId,
        details: { ...input },
      });
      return assetView((await repo.get(id))!);
    });
    // Usable at once on this replica (others pick it up through syncRegisteredTokens / chainAsset).
    if (contract !== null) chain.registerToken({ symbol: input.symbol, decimals: input.decimals, contract });
    return view;
  }

  // ---------- vaults and keys ----------

  async createVault(
    p: Principal,
    ctx: RequestContext,
    input: {
      name: string;
      tier: Tier;
      threshold: number;
      parties: number;
      requiredApprovals?: number | undefined;
      schemes?: SchemeName[] | undefined;
      /** Cold vaults: the public halves of keys made by DKG on an offline cluster (no DKG on line). */
      offlineKeys?: OfflineKeyInput[] | undefined;
    },
  ): Promise<VaultView> {
    if (input.tier === 'cold') {
      if (!input.offlineKeys?.length) {
        throw new ValidationError(
          'CUSTOS_VALIDATION',
          'a cold vault is created from keys made offline: give offlineKeys (the output of `custos mpc keygen` on the offline cluster); its shares never reach the online nodes',
        );
      }
      if (input.schemes)
        throw new ValidationError('CUSTOS_VALIDATION', 'a cold vault takes its schemes from offlineKeys');
      // The vault's t-of-n is its keys'.
      input = {
        ...input,
        threshold: input.offlineKeys[0]!.threshold,
        parties: input.offlineKeys[0]!.parties.length,
      };
    } else if (input.offlineKeys) {
      throw new ValidationError(
        'CUSTOS_VALIDATION',
        'offlineKeys are for cold vaults only (hot and warm keys are made by DKG on the online nodes)',
      );
    }
    if (input.threshold < 1 || input.threshold > input.parties || input.parties > 10) {
      throw new ValidationError('CUSTOS_VALIDATION', 'threshold must be 1..parties and parties at most 10');
    }
    const required = input.requiredApprovals ?? (input.tier === 'hot' ? 1 : input.tier === 'warm' ? 1 : 2);
    if (input.tier !== 'hot' && required < 1) {
      throw new ValidationError('CUSTOS_VALIDATION', `${input.tier} vaults need at least one approval`);
    }
    const schemes = [
      ...new Set(
        input.offlineKeys?.map((k) => k.scheme) ??
          input.schemes ??
          [...this.deps.chains.values()].map((c) => c.signingScheme ?? 'ecdsa-secp256k1'),
      ),
    ].sort();
    if (schemes.length === 0) throw new ValidationError('CUSTOS_VALIDATION', 'no signing scheme');
    const existing = await new VaultRepository(this.db).list(p);
    if (existing.some((v) => v.name === input.name)) {
      throw new CustodyError('CUSTOS_CONFLICT', `a vault named ${input.name} exists`);
    }
    const vaultId = `vlt_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
    const keys: VaultKeyMaterial[] = [];
    if (input.offlineKeys) keys.push(...(await this.#offlineKeys(input.offlineKeys)));
    else {
      for (const scheme of schemes) {
        keys.push(await this.deps.coordinator.createKey(scheme, input.threshold, input.parties));
      }
    }
    const policy: VaultPolicyStatement = {
      v: 1,
      kind: 'custody-vault-policy',
      orgId: p.orgId,
      vaultId,
      tier: input.tier,
      keyIds: keys.map((k) => k.keyId),
      requiredApprovals: required,
      issuedAt: new Date().toISOString(),
    };
    return this.write(async (trx) => {
      const repo = new VaultRepository(trx);
      const v = await repo.insert({
        id: vaultId,
        org_id: p.orgId,
        environment: p.environment,
        name: input.name,
        tier: input.tier,
        threshold: input.threshold,
        parties: input.parties,
        required_approvals: required,
        policy: JSON.stringify(policy),
        policy_signature: null,
        policy_signer_key: null,
        created_by: p.userId,
      });
      const rows: VaultKeyRow[] = [];
      for (const k of keys) {
        rows.push(
          await repo.insertKey({
            key_id: k.keyId,
            vault_id: vaultId,
            org_id: p.orgId,
            scheme: k.scheme,
            threshold: k.threshold,
            parties: JSON.stringify(k.parties),
            public_key: k.publicKey,
            chain_code: k.chainCode,
            xpub: k.xpub ?? null,
            generation: k.generation,
          }),
        );
        await repo.insertCeremony({
          id: `kc_${randomUUID()}`,
          orgId: p.orgId,
          keyId: k.keyId,
          kind: 'create',
          details: {
            scheme: k.scheme,
            threshold: k.threshold,
            parties: k.parties,
            ...(input.offlineKeys ? { offline: true } : {}),
          },
          actorId: p.actor.id,
        });
      }
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'vault.create',
        target: { type: 'vault', id: vaultId },
        requestId: ctx.requestId,
        details: {
          name: input.name,
          tier: input.tier,
          threshold: input.threshold,
          parties: input.parties,
          requiredApprovals: required,
          keys: keys.map((k) => ({ keyId: k.keyId, scheme: k.scheme, publicKey: k.publicKey })),
          ...(input.offlineKeys ? { offlineKeys: true } : {}),
        },
      });
      return vaultView(v, rows);
    });
  }

  async listVaults(p: Principal): Promise<VaultView[]> {
    const repo = new VaultRepository(this.db);
    const out: VaultView[] = [];
    for (const v of await repo.list(p)) out.push(vaultView(v, await repo.keys(v.id)));
    return out;
  }

  async getVault(scope: Scope, id: string): Promise<VaultView> {
    const repo = new VaultRepository(this.db);
    const v = await repo.get(scope, id);
    if (!v) throw notFound('vault');
    return vaultView(v, await repo.keys(v.id));
  }

  async vaultRow(scope: Scope, id: string, trx?: Transaction<Database>): Promise<VaultRow> {
    const v = await new VaultRepository(trx ?? this.db).get(scope, id);
    if (!v) throw notFound('vault');
    return v;
  }

  /** An owner's key (an active approver key of a user with role owner) in this org, or throws. */
  async #ownerKey(
    trx: Transaction<Database>,
    orgId: string,
    publicKey: string,
  ): Promise<{ userId: string; keyId: string }> {
    const keys = await new ApproverKeyRepository(trx).list(orgId);
    const k = keys.find((x) => x.public_key === publicKey && x.status === 'active');
    const user = k ? await new UserRepository(trx).get(orgId, k.user_id) : undefined;
    if (!k || !user || user.role !== 'owner' || user.status !== 'active') {
      throw new CustodyError(
        'CUSTOS_GOVERNANCE_SIGNATURE_INVALID',
        'publicKey is not an active approver key of an owner of this organisation',
      );
    }
    return { userId: user.id, keyId: k.id };
  }

  /** Stores an owner's signature over the vault policy statement (what MPC nodes trust). */
  async signVaultPolicy(
    p: Principal,
    ctx: RequestContext,
    vaultId: string,
    input: { publicKey: string; signature: string },
  ): Promise<VaultView> {
    return this.write(async (trx) => {
      const v = await this.vaultRow(p, vaultId, trx);
      const owner = await this.#ownerKey(trx, p.orgId, input.publicKey);
      const statement = v.policy as unknown as VaultPolicyStatement;
      if (!verifyEd25519(input.publicKey, statementMessage(statement), input.signature)) {
        throw new CustodyError(
          'CUSTOS_GOVERNANCE_SIGNATURE_INVALID',
          'signature does not verify over the vault policy',
        );
      }
      const repo = new VaultRepository(trx);
      const row = await repo.setPolicySignature(v.id, input.signature, input.publicKey);
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'vault.policy_sign',
        target: { type: 'vault', id: v.id },
        requestId: ctx.requestId,
        details: { ownerUserId: owner.userId, ownerKeyId: owner.keyId, tier: statement.tier },
      });
      return vaultView(row, await repo.keys(v.id));
    });
  }

  /** The statement an owner signs so the MPC nodes sign transfers of a registered token. */
  async assetEndorsementStatement(orgId: string, id: string): Promise<AssetEndorsementStatement> {
    const a = await this.asset(id, orgId);
    if (a.org_id === null || a.kind !== 'token' || a.contract === null) {
      throw new CustodyError(
        'CUSTOS_CONFLICT',
        `asset ${id} is configured on the nodes themselves; only registered tokens are endorsed`,
      );
    }
    return {
      v: 1,
      kind: 'custody-asset-endorsement',
      orgId,
      network: a.network,
      symbol: a.symbol,
      decimals: a.decimals,
      contract: a.contract,
      issuedAt: a.created_at.toISOString(),
    };
  }

  async endorseAsset(
    p: Principal,
    ctx: RequestContext,
    id: string,
    input: { publicKey: string; signature: string },
  ): Promise<AssetView> {
    const statement = await this.assetEndorsementStatement(p.orgId, id);
    return this.write(async (trx) => {
      const owner = await this.#ownerKey(trx, p.orgId, input.publicKey);
      if (!verifyEd25519(input.publicKey, statementMessage(statement), input.signature)) {
        throw new CustodyError(
          'CUSTOS_GOVERNANCE_SIGNATURE_INVALID',
          'signature does not verify over the asset endorsement',
        );
      }
      await trx
        .updateTable('assets')
        .set({ endorsement_signature: input.signature, endorsement_owner_key: input.publicKey })
        .where('id', '=', id)
        .execute();
      this.#assets.delete(id);
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'asset.endorse',
        target: { type: 'asset', id },
        requestId: ctx.requestId,
        details: { ownerUserId: owner.userId, ownerKeyId: owner.keyId, contract: statement.contract },
      });
      return assetView((await new AssetRepository(trx).get(id))!);
    });
  }

  /** The owner-signed definition of a registered token, for the nodes; undefined for configured assets. */
  async assetEndorsement(network: string, symbol: string): Promise<CustodyEvidence['asset']> {
    const a = await new AssetRepository(this.db).get(assetId(network, symbol));
    if (!a || a.org_id === null) return undefined;
    if (!a.endorsement_signature || !a.endorsement_owner_key) {
      throw new CustodyError(
        'CUSTOS_ASSET_NOT_ENDORSED',
        `asset ${a.id} has no owner endorsement: the MPC nodes sign transfers of a registered token only after an owner signs its definition (POST /v1/assets/${a.id}/endorsement)`,
      );
    }
    return {
      statement: await this.assetEndorsementStatement(a.org_id, a.id),
      signature: a.endorsement_signature,
      ownerPublicKey: a.endorsement_owner_key,
    };
  }

  /** The statement an owner signs to endorse an approver key. */
  async endorsementStatement(orgId: string, approverKeyId: string): Promise<EndorsementStatement> {
    const k = await new ApproverKeyRepository(this.db).get(orgId, approverKeyId);
    if (k?.status !== 'active') throw notFound('active approver key');
    return {
      v: 1,
      kind: 'custody-approver-endorsement',
      orgId,
      userId: k.user_id,
      approverKeyId: k.id,
      publicKey: k.public_key,
      issuedAt: k.created_at.toISOString(),
    };
  }

  async endorseApproverKey(
    p: Principal,
    ctx: RequestContext,
    approverKeyId: string,
    input: { publicKey: string; signature: string },
  ): Promise<{ approverKeyId: string; statement: EndorsementStatement; ownerPublicKey: string }> {
    const statement = await this.endorsementStatement(p.orgId, approverKeyId);
    return this.write(async (trx) => {
      const owner = await this.#ownerKey(trx, p.orgId, input.publicKey);
      if (!verifyEd25519(input.publicKey, statementMessage(statement), input.signature)) {
        throw new CustodyError(
          'CUSTOS_GOVERNANCE_SIGNATURE_INVALID',
          'signature does not verify over the endorsement',
        );
      }
      await new EndorsementRepository(trx).upsert({
        approverKeyId,
        orgId: p.orgId,
        statement: statement as unknown as Record<string, unknown>,
        signature: input.signature,
        ownerPublicKey: input.publicKey,
      });
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'approver_key.endorse',
        target: { type: 'approver_key', id: approverKeyId },
        requestId: ctx.requestId,
        details: { approverUserId: statement.userId, ownerUserId: owner.userId },
      });
      return { approverKeyId, statement, ownerPublicKey: input.publicKey };
    });
  }

  /**
   * Checks the public halves of offline keys for a cold vault: well-formed, a valid point and chain
   * code (an HD child derives), one per scheme, one t-of-n, and unknown to the online coordinator —
   * a key whose shares are on the online nodes is not cold.
   */
  async #offlineKeys(input: OfflineKeyInput[]): Promise<VaultKeyMaterial[]> {
    const out: VaultKeyMaterial[] = [];
    const bad = (msg: string) => new ValidationError('CUSTOS_VALIDATION', `offlineKeys: ${msg}`);
    for (const k of input) {
      try {
        checkKeyId(k.keyId);
      } catch {
        throw bad(`key id ${JSON.stringify(k.keyId)} is malformed`);
      }
      if (out.some((o) => o.scheme === k.scheme)) throw bad(`two ${k.scheme} keys`);
      const n = k.parties.length;
      if (new Set(k.parties).size !== n || k.parties.some((x) => !Number.isInteger(x) || x < 1 || x > 255)) {
        throw bad(`${k.keyId}: parties must be distinct node ids 1..255`);
      }
      if (k.threshold < 1 || k.threshold > n || n > 10)
        throw bad(`${k.keyId}: threshold must be 1..parties (at most 10)`);
      if (out[0] && (out[0].threshold !== k.threshold || out[0].parties.length !== n)) {
        throw bad('every key of a vault has the same t-of-n');
      }
      if (this.deps.coordinator.registry.get(k.keyId)) {
        throw new CustodyError(
          'CUSTOS_VAULT_COLD_OFFLINE',
          `${k.keyId} is a key of the online MPC nodes; a cold vault's keys are made on the offline cluster`,
        );
      }
      const publicKey = k.publicKey.toLowerCase();
      const chainCode = k.chainCode.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(chainCode)) throw bad(`${k.keyId}: chainCode is 32 bytes hex`);
      try {
        const scheme = await getScheme(k.scheme);
        scheme.derivePublicKey(
          {
            scheme: k.scheme,
            threshold: k.threshold,
            parties: k.parties,
            publicKey: unhex(publicKey),
            chainCode: unhex(chainCode),
          },
          'm/0',
        );
      } catch {
        throw bad(`${k.keyId}: publicKey is not a valid ${k.scheme} public key`);
      }
      const xpub = xpubFor(k.scheme, publicKey, chainCode);
      out.push({
        keyId: k.keyId,
        scheme: k.scheme,
        threshold: k.threshold,
        parties: [...k.parties],
        publicKey,
        chainCode,
        generation: 0,
        ...(xpub ? { xpub } : {}),
      });
    }
    return out;
  }

  /** Key ceremonies for a cold vault's keys run offline, never on the online nodes. */
  #refuseCold(v: { id: string; tier: string }, what: string): void {
    if (v.tier === 'cold') {
      throw new CustodyError(
        'CUSTOS_VAULT_COLD_OFFLINE',
        `vault ${v.id} is cold: ${what} runs on the offline cluster, not on the online MPC nodes`,
      );
    }
  }

  async listKeys(p: Principal): Promise<VaultKeyView[]> {
    return (await new VaultRepository(this.db).listKeys(p)).map(keyView);
  }

  /** Key ceremony: a new threshold key for a vault (for a scheme it lacks). The policy must be re-signed. */
  async createKey(
    p: Principal,
    ctx: RequestContext,
    input: { vaultId: string; scheme: SchemeName },
  ): Promise<VaultKeyView> {
    const v = await this.vaultRow(p, input.vaultId);
    this.#refuseCold(v, 'a new key');
    const repo0 = new VaultRepository(this.db);
    if ((await repo0.keys(v.id)).some((k) => k.scheme === input.scheme)) {
      throw new CustodyError('CUSTOS_CONFLICT', `vault already has a ${input.scheme} key`);
    }
    await getScheme(input.scheme);
    const k = await this.deps.coordinator.createKey(input.scheme, v.threshold, v.parties);
    return this.write(async (trx) => {
      const repo = new VaultRepository(trx);
      const row = await repo.insertKey({
        key_id: k.keyId,
        vault_id: v.id,
        org_id: p.orgId,
        scheme: k.scheme,
        threshold: k.threshold,
        parties: JSON.stringify(k.parties),
        public_key: k.publicKey,
        chain_code: k.chainCode,
        xpub: k.xpub ?? null,
        generation: 0,
      });
      const policy = v.policy as unknown as VaultPolicyStatement;
      const next: VaultPolicyStatement = {
        ...policy,
        keyIds: [...policy.keyIds, k.keyId],
        issuedAt: new Date().toISOString(),
      };
      await trx
        .updateTable('vaults')
        .set({ policy: JSON.stringify(next), policy_signature: null, policy_signer_key: null })
        .where('id', '=', v.id)
        .execute();
      await repo.insertCeremony({
        id: `kc_${randomUUID()}`,
        orgId: p.orgId,
        keyId: k.keyId,
        kind: 'create',
        details: { scheme: k.scheme, threshold: k.threshold, parties: k.parties },
        actorId: p.actor.id,
      });
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'key.create',
        target: { type: 'key', id: k.keyId },
        requestId: ctx.requestId,
        details: {
          vaultId: v.id,
          scheme: k.scheme,
          threshold: k.threshold,
          parties: k.parties,
          publicKey: k.publicKey,
        },
      });
      return keyView(row);
    });
  }

  async #ceremony(
    p: Principal,
    ctx: RequestContext,
    keyId: string,
    kind: 'refresh' | 'reshare',
    run: () => Promise<{ threshold: number; parties: number[]; generation: number }>,
  ): Promise<VaultKeyView> {
    const existing = await new VaultRepository(this.db).key(p, keyId);
    if (!existing) throw notFound('key');
    this.#refuseCold(await this.vaultRow(p, existing.vault_id), `a key ${kind}`);
    let r: { threshold: number; parties: number[]; generation: number };
    try {
      r = await run();
    } catch (e) {
      await this.deps.audit.record(this.db, {
        orgId: p.orgId,
        actor: p.actor,
        action: `key.${kind}`,
        target: { type: 'key', id: keyId },
        outcome: 'failure',
        requestId: ctx.requestId,
        details: { error: (e as Error).message.slice(0, 200) },
      });
      throw e;
    }
    return this.write(async (trx) => {
      const repo = new VaultRepository(trx);
      const row = await repo.updateKey(keyId, r);
      await repo.insertCeremony({
        id: `kc_${randomUUID()}`,
        orgId: p.orgId,
        keyId,
        kind,
        details: { ...r },
        actorId: p.actor.id,
      });
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: `key.${kind}`,
        target: { type: 'key', id: keyId },
        requestId: ctx.requestId,
        details: { ...r, previous: { threshold: existing.threshold, parties: existing.parties } },
      });
      return keyView(row);
    });
  }

  refreshKey(p: Principal, ctx: RequestContext, keyId: string): Promise<VaultKeyView> {
    return this.#ceremony(p, ctx, keyId, 'refresh', async () => {
      const k = await this.deps.coordinator.refresh(keyId);
      return { threshold: k.threshold, parties: k.parties, generation: k.generation };
    });
  }

  reshareKey(
    p: Principal,
    ctx: RequestContext,
    keyId: string,
    input: { threshold: number; committee: number[] },
  ): Promise<VaultKeyView> {
    return this.#ceremony(p, ctx, keyId, 'reshare', async () => {
      const k = await this.deps.coordinator.reshare(keyId, input);
      return { threshold: k.threshold, parties: k.parties, generation: k.generation };
    });
  }

  // ---------- wallets and addresses ----------

  async createWallet(
    p: Principal,
    ctx: RequestContext,
    input: { vaultId: string; network: string; name?: string | undefined; hotLimit?: bigint | undefined },
  ): Promise<WalletView> {
    const chain = this.chain(input.network);
    const scheme = chain.signingScheme ?? 'ecdsa-secp256k1';
    const keys = await new VaultRepository(this.db).keys(input.vaultId);
    const v = await this.vaultRow(p, input.vaultId);
    const key = keys.find((k) => k.scheme === scheme);
    if (!key) {
      throw new CustodyError(
        'CUSTOS_CONFLICT',
        `vault has no ${scheme} key for ${input.network}: POST /v1/keys first`,
      );
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.write(async (trx) => {
          const repo = new WalletRepository(trx);
          await repo.orgBranch(p.orgId);
          const { n } = await repo.nextAccount(p.orgId);
          const w = await repo.insert({
            id: `wal_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
            org_id: p.orgId,
            environment: v.environment,
            vault_id: v.id,
            network: input.network,
            scheme,
            key_id: key.key_id,
            account: Number(n),
            hot_limit: input.hotLimit ?? null,
            name: input.name ?? `${v.name} ${input.network}`,
          });
          await this.deps.audit.append(trx, {
            orgId: p.orgId,
            actor: p.actor,
            action: 'wallet.create',
            target: { type: 'wallet', id: w.id },
            requestId: ctx.requestId,
            details: { vaultId: v.id, network: input.network, hotLimit: input.hotLimit?.toString() ?? null },
          });
          return walletView(w);
        });
      } catch (e) {
        // Two first wallets of different orgs racing for a branch, or of one org for an account.
        const msg =
          String((e as Error)?.message ?? '') + String((e as { cause?: Error }).cause?.message ?? '');
        if (attempt < 5 && /unique|duplicate/i.test(msg) && !/wallets_vault_network/.test(msg)) continue;
        if (/wallets_vault_network/.test(msg)) {
          throw new CustodyError('CUSTOS_CONFLICT', `the vault already has a wallet on ${input.network}`);
        }
        throw e;
      }
    }
  }

  async listWallets(p: Principal, vaultId?: string): Promise<WalletView[]> {
    return (await new WalletRepository(this.db).list(p, vaultId)).map(walletView);
  }

  async walletRow(
    scope: Scope,
    id: string,
    db: Kysely<Database> | Transaction<Database> = this.db,
  ): Promise<WalletRow> {
    const w = await new WalletRepository(db).get(scope, id);
    if (!w) throw notFound('wallet');
    return w;
  }

  /**
   * The public key at `path` of a wallet's vault key. A key id's public key and chain code never
   * change (refresh and reshare keep them), so they are read once per key id; the derivation itself
   * is memoised by the HD layer.
   */
  async derivePublicKey(
    w: { key_id: string; scheme: string },
    path: string,
    db: Kysely<Database> | Transaction<Database> = this.db,
  ): Promise<Uint8Array> {
    let k = this.#keyInfo.get(w.key_id);
    if (!k) {
      const row = await db
        .selectFrom('vault_keys')
        .select(['scheme', 'threshold', 'parties', 'public_key', 'chain_code'])
        .where('key_id', '=', w.key_id)
        .executeTakeFirstOrThrow();
      k = {
        scheme: row.scheme as SchemeName,
        threshold: row.threshold,
        parties: row.parties,
        publicKey: unhex(row.public_key),
        chainCode: unhex(row.chain_code),
      };
      this.#keyInfo.set(w.key_id, k);
    }
    const scheme = await getScheme(k.scheme);
    return scheme.derivePublicKey(
      { ...k, publicKey: k.publicKey.slice(), chainCode: k.chainCode.slice() },
      path,
    );
  }

  /**
   * A fresh address: the wallet row's counter is incremented atomically (UPDATE … RETURNING), so
   * concurrent requests never get the same index; path m/<org branch>/<wallet account>/<index>.
   */
  async createAddress(
    p: Principal,
    ctx: RequestContext,
    walletId: string,
    input: { label?: string | undefined },
  ): Promise<AddressView> {
    const w = await this.walletRow(p, walletId);
    const chain = this.chain(w.network);
    return this.write(async (trx) => {
      const repo = new WalletRepository(trx);
      const branch = await repo.orgBranch(p.orgId);
      const index = await repo.allocateIndex(w.id);
      const path = `m/${branch}/${w.account}/${index}`;
      const address = chain.deriveAddress(await this.derivePublicKey(w, path, trx));
      const a = await repo.insertAddress({
        id: `adr_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
        org_id: p.orgId,
        wallet_id: w.id,
        network: w.network,
        address,
        path,
        index,
        label: input.label ?? null,
      });
      await this.deps.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: 'address.create',
        target: { type: 'address', id: a.id },
        requestId: ctx.requestId,
        details: { walletId: w.id, network: w.network, address, path },
      });
      return addressView(a);
    });
  }

  async listAddresses(p: Principal, walletId: string): Promise<AddressView[]> {
    const w = await this.walletRow(p, walletId);
    return (await new WalletRepository(this.db).addresses(w.id)).map(addressView);
  }

  async walletBalances(p: Principal, walletId: string): Promise<BalanceView[]> {
    const w = await this.walletRow(p, walletId);
    return balanceViews(await new LedgerRepository(this.db).accountsOfWallet(w.id));
  }
}

/** The public half of a key made by DKG on an offline cluster (`custos mpc keygen --json`). */
export interface OfflineKeyInput {
  keyId: string;
  scheme: SchemeName;
  /** Hex: 33-byte compressed secp256k1 point, or 32-byte Ed25519 / x-only key, as keygen prints it. */
  publicKey: string;
  chainCode: string;
  threshold: number;
  /** The committee's node ids (keygen's `committee`). */
  parties: number[];
}

type VaultKeyMaterial = Pick<
  KeyRecord,
  'keyId' | 'scheme' | 'threshold' | 'parties' | 'publicKey' | 'chainCode' | 'generation'
> & {
  xpub?: string | undefined;
};

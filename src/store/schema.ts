// Table types for Kysely. Each migration that adds a table adds its interface here.
import type { ColumnType, Generated } from 'kysely';

export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface InstanceTable {
  id: Generated<number>;
  instance_id: string;
  created_at: Timestamp;
}

export interface IdempotencyRecordTable {
  scope: string;
  key: string;
  request_hash: string;
  status_code: number;
  response_body: unknown;
  created_at: Timestamp;
  expires_at: Timestamp;
}

// --- identity and audit (migration 2026-11-22-0002) ---

export type Int8 = ColumnType<bigint, bigint | number | string, bigint | number | string>;

export interface OrgTable {
  id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface UserTable {
  id: string;
  org_id: string;
  email: string;
  role: string;
  status: Generated<string>;
  password_hash: string;
  totp_secret_enc: string | null;
  totp_pending_enc: string | null;
  totp_last_counter: Int8 | null;
  recovery_codes: ColumnType<string[], string | undefined, string>;
  failed_logins: Generated<number>;
  locked_until: Date | null;
  last_login_at: Date | null;
  created_by: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface RefreshTokenTable {
  id: string;
  org_id: string;
  user_id: string;
  family_id: string;
  token_hash: string;
  environment: string;
  mfa: boolean;
  status: string;
  created_at: Generated<Date>;
  expires_at: Date;
  used_at: Date | null;
}

export interface ApiKeyTable {
  id: string;
  org_id: string;
  environment: string;
  name: string;
  redacted: string;
  key_hash: string;
  scopes: ColumnType<string[], string, string>;
  rate_limit_burst: number | null;
  rate_limit_per_minute: number | null;
  created_by: string | null;
  created_at: Generated<Date>;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface ApproverKeyTable {
  id: string;
  org_id: string;
  user_id: string;
  public_key: string;
  label: string;
  status: string;
  created_at: Generated<Date>;
  revoked_at: Date | null;
  revoked_by: string | null;
}

export interface JwtSigningKeyTable {
  kid: string;
  alg: string;
  public_jwk: ColumnType<Record<string, unknown>, string, string>;
  private_enc: string;
  status: string;
  created_at: Generated<Date>;
  retire_at: Date | null;
}

export interface SecurityEventTable {
  id: Generated<bigint>;
  org_id: string | null;
  occurred_at: Generated<Date>;
  kind: string;
  severity: string;
  actor_type: string | null;
  actor_id: string | null;
  ip: string | null;
  request_id: string | null;
  details: ColumnType<Record<string, unknown>, string, string>;
}

export interface AuditLogTable {
  seq: Int8;
  occurred_at: Date;
  org_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  request_id: string | null;
  details: ColumnType<Record<string, unknown>, string, string>;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointTable {
  seq: Int8;
  hash: string;
  created_at: Date;
  public_key: string;
  signature: string;
}

// --- custody (migration 2026-11-22-0003) ---

export type Numeric = ColumnType<bigint, bigint | string, bigint | string>;
export type Json<T = Record<string, unknown>> = ColumnType<T, string, string>;

export interface AssetTable {
  id: string;
  network: string;
  symbol: string;
  decimals: number;
  kind: string;
  contract: string | null;
  /** The organisation that registered it (visible to it alone); null = configured, everyone's. */
  org_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_by: string | null;
  created_at: Generated<Date>;
  /** Owner's Ed25519 signature over the asset endorsement statement (registered tokens). */
  endorsement_signature: ColumnType<string | null, string | null | undefined, string | null>;
  endorsement_owner_key: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface VaultTable {
  id: string;
  org_id: string;
  /** 'sandbox' | 'production' (the creator's environment; wallets inherit it). */
  environment: string;
  name: string;
  tier: string;
  threshold: number;
  parties: number;
  required_approvals: number;
  policy: Json;
  policy_signature: string | null;
  policy_signer_key: string | null;
  created_by: string | null;
  created_at: Generated<Date>;
}

export interface VaultKeyTable {
  key_id: string;
  vault_id: string;
  org_id: string;
  scheme: string;
  threshold: number;
  parties: Json<number[]>;
  public_key: string;
  chain_code: string;
  xpub: string | null;
  generation: number;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface KeyCeremonyTable {
  id: string;
  org_id: string;
  key_id: string;
  kind: string;
  details: Json;
  actor_id: string | null;
  created_at: Generated<Date>;
}

export interface ApproverEndorsementTable {
  approver_key_id: string;
  org_id: string;
  statement: Json;
  signature: string;
  owner_public_key: string;
  created_at: Generated<Date>;
}

export interface OrgBranchTable {
  org_id: string;
  branch: number;
}

export interface WalletTable {
  id: string;
  org_id: string;
  /** The vault's environment. */
  environment: string;
  vault_id: string;
  network: string;
  scheme: string;
  key_id: string;
  account: number;
  next_index: Generated<number>;
  hot_limit: Numeric | null;
  name: string;
  created_at: Generated<Date>;
}

export interface AddressTable {
  id: string;
  org_id: string;
  wallet_id: string;
  network: string;
  address: string;
  path: string;
  index: number;
  label: string | null;
  created_at: Generated<Date>;
}

export interface LedgerAccountTable {
  id: string;
  org_id: string;
  asset_id: string;
  kind: string;
  wallet_id: string | null;
  address_id: string | null;
  balance: ColumnType<bigint, bigint | string | undefined, bigint | string>;
  created_at: Generated<Date>;
}

export interface JournalEntryTable {
  id: string;
  org_id: string;
  kind: string;
  ref_type: string;
  ref_id: string;
  created_at: Generated<Date>;
}

export interface PostingTable {
  id: Generated<bigint>;
  entry_id: string;
  account_id: string;
  amount: Numeric;
}

export interface DepositTable {
  id: string;
  org_id: string;
  wallet_id: string;
  address_id: string;
  network: string;
  tx_id: string;
  idx: number;
  asset_id: string;
  amount: Numeric;
  from_address: string;
  block_number: Int8;
  block_hash: string;
  status: string;
  created_at: Generated<Date>;
  credited_at: Date | null;
}

export interface TransactionTable {
  id: string;
  org_id: string;
  environment: string;
  wallet_id: string;
  vault_id: string;
  address_id: string;
  network: string;
  asset_id: string;
  destination: string;
  amount: Numeric;
  fee_reserved: Numeric;
  fee_paid: Numeric | null;
  intent: Json;
  intent_hash: string;
  state: string;
  required_approvals: number;
  screening: Json | null;
  initiator_type: string;
  initiator_id: string | null;
  initiator_user_id: string | null;
  expires_at: Date;
  unsigned_tx: Json | null;
  chain_tx_id: string | null;
  signed_raw: string | null;
  confirmations: Generated<number>;
  failure: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface TransactionApprovalTable {
  id: string;
  transaction_id: string;
  org_id: string;
  intent_hash: string;
  approver_key_id: string;
  public_key: string;
  user_id: string;
  decision: string;
  signature: string;
  created_at: Generated<Date>;
}

export interface ChainCursorTable {
  network: string;
  cursor: string;
  updated_at: Generated<Date>;
}

/** EVM nonce allocation per (network, lower-case address); see src/chains/evm/nonce-store-pg.ts. */
export interface EvmNonceTable {
  network: string;
  address: string;
  next: bigint;
  /** JSON array of released nonces (numbers), handed out again before `next`. */
  released: ColumnType<number[], string, string>;
  updated_at: Generated<Date>;
}

/** A time-limited lease (e.g. 'chain-watcher:anvil') held by one process at a time. */
export interface ChainLeaseTable {
  name: string;
  holder: string;
  expires_at: Date;
  acquired_at: Generated<Date>;
}

/** Where an event relay is in the audit log (migration 2026-12-04-0002). */
export interface EventCursorTable {
  name: string;
  /** Audit `seq` of the last event published. */
  seq: Int8;
  updated_at: Generated<Date>;
}

export interface Database {
  custos_instance: InstanceTable;
  idempotency_records: IdempotencyRecordTable;
  orgs: OrgTable;
  users: UserTable;
  refresh_tokens: RefreshTokenTable;
  api_keys: ApiKeyTable;
  approver_keys: ApproverKeyTable;
  jwt_signing_keys: JwtSigningKeyTable;
  security_events: SecurityEventTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointTable;
  assets: AssetTable;
  vaults: VaultTable;
  vault_keys: VaultKeyTable;
  key_ceremonies: KeyCeremonyTable;
  approver_endorsements: ApproverEndorsementTable;
  org_branches: OrgBranchTable;
  wallets: WalletTable;
  addresses: AddressTable;
  ledger_accounts: LedgerAccountTable;
  journal_entries: JournalEntryTable;
  postings: PostingTable;
  deposits: DepositTable;
  transactions: TransactionTable;
  transaction_approvals: TransactionApprovalTable;
  chain_cursors: ChainCursorTable;
  evm_nonces: EvmNonceTable;
  chain_leases: ChainLeaseTable;
  event_cursors: EventCursorTable;
}

// Frozen migration: never edit after it has shipped; add a new dated file instead.
// Custody: assets, vaults and their threshold keys, key ceremonies, owner-signed governance
// statements (vault policies, approver endorsements), wallets, organisation HD branches, addresses,
// the double-entry ledger (accounts, immutable journal entries and postings), deposits, withdrawals
// with their approvals, and chain scan cursors.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('assets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('symbol', 'text', (c) => c.notNull())
    .addColumn('decimals', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('contract', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('assets_network_symbol', ['network', 'symbol'])
    .execute();

  await db.schema
    .createTable('vaults')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('tier', 'text', (c) => c.notNull())
    .addColumn('threshold', 'integer', (c) => c.notNull())
    .addColumn('parties', 'integer', (c) => c.notNull())
    .addColumn('required_approvals', 'integer', (c) => c.notNull())
    .addColumn('policy', 'jsonb', (c) => c.notNull())
    .addColumn('policy_signature', 'text')
    .addColumn('policy_signer_key', 'text')
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('vaults_org_name', ['org_id', 'name'])
    .execute();

  await db.schema
    .createTable('vault_keys')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('vault_id', 'text', (c) => c.notNull().references('vaults.id'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('scheme', 'text', (c) => c.notNull())
    .addColumn('threshold', 'integer', (c) => c.notNull())
    .addColumn('parties', 'jsonb', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('chain_code', 'text', (c) => c.notNull())
    .addColumn('xpub', 'text')
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('vault_keys_vault_scheme', ['vault_id', 'scheme'])
    .execute();

  await db.schema
    .createTable('key_ceremonies')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('approver_endorsements')
    .addColumn('approver_key_id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('statement', 'jsonb', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('owner_public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  // One non-hardened HD branch per organisation: addresses are m/<branch>/<wallet account>/<index>.
  await db.schema
    .createTable('org_branches')
    .addColumn('org_id', 'text', (c) => c.primaryKey())
    .addColumn('branch', 'integer', (c) => c.notNull().unique())
    .execute();

  await db.schema
    .createTable('wallets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('vault_id', 'text', (c) => c.notNull().references('vaults.id'))
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('scheme', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('account', 'integer', (c) => c.notNull())
    .addColumn('next_index', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('hot_limit', sql`numeric(78,0)`)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('wallets_vault_network', ['vault_id', 'network'])
    .execute();

  await db.schema
    .createTable('addresses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('wallet_id', 'text', (c) => c.notNull().references('wallets.id'))
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('index', 'integer', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('addresses_network_address', ['network', 'address'])
    .addUniqueConstraint('addresses_wallet_index', ['wallet_id', 'index'])
    .execute();

  // Ledger accounts: per address × asset ('available', 'pending', 'reserved') and per org × asset
  // ('external', 'fees'). `balance` is a cache of the sum of the account's postings, maintained in
  // the same transaction as each posting (the reconciliation checks it against the sum).
  await db.schema
    .createTable('ledger_accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('asset_id', 'text', (c) => c.notNull().references('assets.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('wallet_id', 'text')
    .addColumn('address_id', 'text')
    .addColumn('balance', sql`numeric(78,0)`, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('ledger_accounts_key', ['org_id', 'asset_id', 'kind', 'address_id'], (c) =>
      c.nullsNotDistinct(),
    )
    .execute();
  await db.schema.createIndex('ledger_accounts_wallet').on('ledger_accounts').column('wallet_id').execute();

  await db.schema
    .createTable('journal_entries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('ref_type', 'text', (c) => c.notNull())
    .addColumn('ref_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('journal_entries_ref')
    .on('journal_entries')
    .columns(['ref_type', 'ref_id'])
    .execute();

  await db.schema
    .createTable('postings')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('entry_id', 'text', (c) => c.notNull().references('journal_entries.id'))
    .addColumn('account_id', 'text', (c) => c.notNull().references('ledger_accounts.id'))
    .addColumn('amount', sql`numeric(78,0)`, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('postings_account').on('postings').column('account_id').execute();
  await db.schema.createIndex('postings_entry').on('postings').column('entry_id').execute();

  // Journal entries and postings are immutable: corrections are new entries.
  await sql`
    create function custos_refuse_ledger_change() returns trigger language plpgsql as $$
    begin
      raise exception 'custos: % is immutable; % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  for (const table of ['journal_entries', 'postings']) {
    await sql`create trigger ${sql.raw(`${table}_immutable`)} before update or delete on ${sql.table(
      table,
    )} for each row execute function custos_refuse_ledger_change()`.execute(db);
    await sql`create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(
      table,
    )} for each statement execute function custos_refuse_ledger_change()`.execute(db);
  }

  await db.schema
    .createTable('deposits')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('wallet_id', 'text', (c) => c.notNull())
    .addColumn('address_id', 'text', (c) => c.notNull())
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('tx_id', 'text', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('asset_id', 'text', (c) => c.notNull())
    .addColumn('amount', sql`numeric(78,0)`, (c) => c.notNull())
    .addColumn('from_address', 'text', (c) => c.notNull())
    .addColumn('block_number', 'int8', (c) => c.notNull())
    .addColumn('block_hash', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('credited_at', 'timestamptz')
    .addUniqueConstraint('deposits_network_tx_idx', ['network', 'tx_id', 'idx'])
    .execute();
  await db.schema.createIndex('deposits_org').on('deposits').columns(['org_id', 'created_at']).execute();

  await db.schema
    .createTable('transactions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('environment', 'text', (c) => c.notNull())
    .addColumn('wallet_id', 'text', (c) => c.notNull())
    .addColumn('vault_id', 'text', (c) => c.notNull())
    .addColumn('address_id', 'text', (c) => c.notNull())
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('asset_id', 'text', (c) => c.notNull())
    .addColumn('destination', 'text', (c) => c.notNull())
    .addColumn('amount', sql`numeric(78,0)`, (c) => c.notNull())
    .addColumn('fee_reserved', sql`numeric(78,0)`, (c) => c.notNull())
    .addColumn('fee_paid', sql`numeric(78,0)`)
    .addColumn('intent', 'jsonb', (c) => c.notNull())
    .addColumn('intent_hash', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('required_approvals', 'integer', (c) => c.notNull())
    .addColumn('screening', 'jsonb')
    .addColumn('initiator_type', 'text', (c) => c.notNull())
    .addColumn('initiator_id', 'text')
    .addColumn('initiator_user_id', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('unsigned_tx', 'jsonb')
    .addColumn('chain_tx_id', 'text')
    .addColumn('signed_raw', 'text')
    .addColumn('confirmations', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failure', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('transactions_org')
    .on('transactions')
    .columns(['org_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('transactions_state')
    .on('transactions')
    .columns(['state', 'network'])
    .execute();

  await db.schema
    .createTable('transaction_approvals')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('transaction_id', 'text', (c) => c.notNull().references('transactions.id'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('intent_hash', 'text', (c) => c.notNull())
    .addColumn('approver_key_id', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('decision', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('transaction_approvals_user', ['transaction_id', 'user_id'])
    .addUniqueConstraint('transaction_approvals_key', ['transaction_id', 'approver_key_id'])
    .execute();

  await db.schema
    .createTable('chain_cursors')
    .addColumn('network', 'text', (c) => c.primaryKey())
    .addColumn('cursor', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'chain_cursors',
    'transaction_approvals',
    'transactions',
    'deposits',
    'postings',
    'journal_entries',
    'ledger_accounts',
    'addresses',
    'wallets',
    'org_branches',
    'approver_endorsements',
    'key_ceremonies',
    'vault_keys',
    'vaults',
    'assets',
  ]) {
    await db.schema.dropTable(t).execute();
  }
  await sql`drop function if exists custos_refuse_ledger_change()`.execute(db);
}

// Frozen migration: never edit after it has shipped; add a new dated file instead.
// Sandbox and production data apart: a vault belongs to one environment and its wallets inherit it
// (addresses, deposits, ledger accounts and withdrawals hang off a wallet; transactions already
// carry theirs). Rows from before this migration are production.
// Assets an organisation registers are its own (org_id); configured ones (org_id null) are everyone's.
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('assets').addColumn('org_id', 'text').execute();
  for (const table of ['vaults', 'wallets']) {
    await db.schema
      .alterTable(table)
      .addColumn('environment', 'text', (c) =>
        c.notNull().defaultTo('production').check(sql`environment in ('sandbox', 'production')`),
      )
      .execute();
    await db.schema
      .createIndex(`${table}_org_environment`)
      .on(table)
      .columns(['org_id', 'environment'])
      .execute();
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['wallets', 'vaults']) {
    await db.schema.dropIndex(`${table}_org_environment`).ifExists().execute();
    await db.schema.alterTable(table).dropColumn('environment').execute();
  }
  await db.schema.alterTable('assets').dropColumn('org_id').execute();
}

// Frozen migration: never edit after it has shipped; add a new dated file instead.
// Chain state shared by every replica: EVM nonces per (network, address) that survive restarts
// (src/chains/evm/nonce-store-pg.ts), and leases so that one chain watcher at a time works a
// network (src/custody/leases.ts).
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('evm_nonces')
    .addColumn('network', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('next', 'int8', (c) => c.notNull())
    .addColumn('released', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('evm_nonces_pk', ['network', 'address'])
    .execute();

  await db.schema
    .createTable('chain_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('acquired_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('chain_leases').ifExists().execute();
  await db.schema.dropTable('evm_nonces').ifExists().execute();
}

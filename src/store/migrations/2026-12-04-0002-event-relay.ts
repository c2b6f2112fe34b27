// Frozen migration: never edit after it has shipped; add a new dated file instead.
// Custody events (transaction state changes, deposits) are read from the audit log, which is written
// in the same database transaction as the change itself, so an event exists exactly when its change
// committed. The event relay publishes them to the bus and keeps its position here: the audit `seq`
// of the last event it published, per relay name.
import type { Kysely } from 'kysely';
import { sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('event_cursors')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('seq', 'int8', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('event_cursors').execute();
}

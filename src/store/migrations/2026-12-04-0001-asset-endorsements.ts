// Frozen migration: never edit after it has shipped; add a new dated file instead.
// A token an organisation registers is credited on deposit at once, but the MPC nodes sign transfers
// of it only with an owner's signature over its definition (network, symbol, decimals, contract):
// the statement is rebuilt from the row, the signature and the owner's public key are kept here.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('assets')
    .addColumn('endorsement_signature', 'text')
    .addColumn('endorsement_owner_key', 'text')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('assets')
    .dropColumn('endorsement_owner_key')
    .dropColumn('endorsement_signature')
    .execute();
}

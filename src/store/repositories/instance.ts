// The one-row identity of this installation (created on first migrate/start, never changed).
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';

export class InstanceRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Returns the instance id, creating it on first call (safe under concurrency). */
  async ensure(): Promise<{ instanceId: string; createdAt: Date }> {
    await this.db
      .insertInto('custos_instance')
      .values({ id: 1, instance_id: randomUUID() } as never)
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    const row = await this.db
      .selectFrom('custos_instance')
      .select(['instance_id', 'created_at'])
      .executeTakeFirstOrThrow();
    return { instanceId: row.instance_id, createdAt: row.created_at };
  }
}

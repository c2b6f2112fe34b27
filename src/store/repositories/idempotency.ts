// Stored responses for Idempotency-Key: same key + same request → the stored response; same key +
// different request → conflict. `scope` isolates tenants and routes (e.g. "org:<id>:POST /v1/x").
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../schema.ts';

export interface IdempotencyRecord {
  scope: string;
  key: string;
  requestHash: string;
  statusCode: number;
  responseBody: unknown;
  expiresAt: Date;
}

export type IdempotencyLookup =
  | { kind: 'miss' }
  | { kind: 'hit'; record: IdempotencyRecord }
  | { kind: 'mismatch'; record: IdempotencyRecord };

export class IdempotencyRepository {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async lookup(
    scope: string,
    key: string,
    requestHash: string,
    now = new Date(),
  ): Promise<IdempotencyLookup> {
    const row = await this.db
      .selectFrom('idempotency_records')
      .selectAll()
      .where('scope', '=', scope)
      .where('key', '=', key)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (!row) return { kind: 'miss' };
    const record: IdempotencyRecord = {
      scope: row.scope,
      key: row.key,
      requestHash: row.request_hash,
      statusCode: row.status_code,
      responseBody: row.response_body,
      expiresAt: row.expires_at,
    };
    return row.request_hash === requestHash ? { kind: 'hit', record } : { kind: 'mismatch', record };
  }

  /** Stores a response; returns false if a record for (scope, key) already exists. */
  async save(
    r: Omit<IdempotencyRecord, 'expiresAt'> & { ttlMs: number },
    now = new Date(),
  ): Promise<boolean> {
    const res = await this.db
      .insertInto('idempotency_records')
      .values({
        scope: r.scope,
        key: r.key,
        request_hash: r.requestHash,
        status_code: r.statusCode,
        response_body: JSON.stringify(r.responseBody),
        expires_at: new Date(now.getTime() + r.ttlMs),
      })
      .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
      .executeTakeFirst();
    return (res.numInsertedOrUpdatedRows ?? 0n) > 0n;
  }

  async deleteExpired(now = new Date()): Promise<bigint> {
    const res = await this.db
      .deleteFrom('idempotency_records')
      .where('expires_at', '<=', now)
      .executeTakeFirst();
    return res.numDeletedRows;
  }
}

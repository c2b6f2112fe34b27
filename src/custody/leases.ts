// Leases in PostgreSQL (the `chain_leases` table): a named, time-limited claim held by one process
// at a time — every chain watcher replica tries to take `chain-watcher:<network>` before a pass, so
// several watchers on one database never work the same network at once, and a crashed holder's
// lease simply runs out (ttl) and another takes over. The database clock decides expiry, so
// replicas on different hosts agree. Correctness does not rest on the lease alone: deposits are
// unique per (network, tx, index) and every credit/transition re-reads its row under a lock.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/schema.ts';

export function leaseHolderId(role = 'custody'): string {
  return `${role}@${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export class PgLease {
  constructor(
    private readonly db: Kysely<Database>,
    readonly name: string,
    readonly holder: string,
    readonly ttlMs: number,
  ) {
    if (!Number.isInteger(ttlMs) || ttlMs < 1000) throw new TypeError('lease: ttlMs must be >= 1000');
  }

  /** Takes the lease if it is free, expired or already ours (then extends it); true when held. */
  async acquire(): Promise<boolean> {
    const expires = sql<Date>`now() + make_interval(secs => ${this.ttlMs / 1000})`;
    const r = await this.db
      .insertInto('chain_leases')
      .values({ name: this.name, holder: this.holder, expires_at: expires })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({
            holder: this.holder,
            expires_at: expires,
            acquired_at: sql<Date>`case when chain_leases.holder = ${this.holder} then chain_leases.acquired_at else now() end`,
          })
          .where((eb) =>
            eb.or([
              eb('chain_leases.holder', '=', this.holder),
              eb('chain_leases.expires_at', '<', sql<Date>`now()`),
            ]),
          ),
      )
      .returning('holder')
      .executeTakeFirst();
    return r?.holder === this.holder;
  }

  /** Gives the lease up (only if we hold it). */
  async release(): Promise<void> {
    await this.db
      .deleteFrom('chain_leases')
      .where('name', '=', this.name)
      .where('holder', '=', this.holder)
      .execute();
  }

  /** Who holds it now (diagnostics, tests). */
  async current(): Promise<{ holder: string; expiresAt: Date } | null> {
    const r = await this.db
      .selectFrom('chain_leases')
      .select(['holder', 'expires_at'])
      .where('name', '=', this.name)
      .where('expires_at', '>', sql<Date>`now()`)
      .executeTakeFirst();
    return r ? { holder: r.holder, expiresAt: r.expires_at } : null;
  }
}

// NonceStore on PostgreSQL (or PGlite): the `evm_nonces` row of (network, address) is the single
// source of truth for every API/worker replica and survives restarts. Same policy as
// MemoryNonceStore (src/chains/evm/nonce.ts): next = max(stored next, chain pending count), released
// nonces are handed out again first, stale released ones are forgotten. The row is locked
// (SELECT … FOR UPDATE) for the read-modify-write, so concurrent reservations for one address are
// serialised across processes and different addresses proceed in parallel.
//
// Ambient transaction: when the caller reserves inside its own database transaction (the withdrawal
// worker builds the transfer while it moves the withdrawal to `signing`), it wraps the call in
// `withNonceTransaction(trx, …)`; the reservation then commits or rolls back with that transaction
// — a rolled-back withdrawal leaves no gap — and on PGlite (one session) it cannot deadlock waiting
// for a second connection.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../store/schema.ts';
import type { NonceStore } from './nonce.ts';

type Db = Kysely<Database> | Transaction<Database>;

const ambient = new AsyncLocalStorage<Transaction<Database>>();

/** Runs `fn` so that nonce reservations inside it use `trx` (see the file comment). */
export function withNonceTransaction<T>(trx: Transaction<Database>, fn: () => Promise<T>): Promise<T> {
  return ambient.run(trx, fn);
}

export class PgNonceStore implements NonceStore {
  constructor(private readonly db: Kysely<Database>) {}

  async reserve(network: string, address: string, chainPending: number): Promise<number> {
    checkNonce(chainPending, 'chainPending');
    return this.#inTransaction(async (trx) => {
      const slot = await this.#lock(trx, network, address);
      let released = slot.released.filter((n) => n >= chainPending).sort((a, b) => a - b);
      let next = slot.next;
      let nonce: number;
      if (released.length > 0) {
        nonce = released[0]!;
        released = released.slice(1);
      } else {
        nonce = Math.max(next, chainPending);
        next = nonce + 1;
      }
      await this.#save(trx, network, address, next, released);
      return nonce;
    });
  }

  async release(network: string, address: string, nonce: number): Promise<void> {
    checkNonce(nonce, 'nonce');
    return this.#inTransaction(async (trx) => {
      const slot = await this.#lock(trx, network, address);
      let { next } = slot;
      const released = [...slot.released];
      if (nonce >= next || released.includes(nonce)) return;
      if (nonce === next - 1) next = nonce;
      else released.push(nonce);
      // Trailing released nonces fold back into `next`.
      released.sort((a, b) => a - b);
      while (released.length > 0 && released[released.length - 1] === next - 1) {
        released.pop();
        next--;
      }
      await this.#save(trx, network, address, next, released);
    });
  }

  async peek(network: string, address: string): Promise<{ next: number; released: number[] } | null> {
    const db: Db = ambient.getStore() ?? this.db;
    const r = await db
      .selectFrom('evm_nonces')
      .select(['next', 'released'])
      .where('network', '=', network)
      .where('address', '=', address.toLowerCase())
      .executeTakeFirst();
    return r ? { next: Number(r.next), released: parseReleased(r.released) } : null;
  }

  async #lock(
    trx: Transaction<Database>,
    network: string,
    address: string,
  ): Promise<{ next: number; released: number[] }> {
    const a = address.toLowerCase();
    await trx
      .insertInto('evm_nonces')
      .values({ network, address: a, next: 0n, released: '[]' })
      .onConflict((oc) => oc.columns(['network', 'address']).doNothing())
      .execute();
    const r = await trx
      .selectFrom('evm_nonces')
      .select(['next', 'released'])
      .where('network', '=', network)
      .where('address', '=', a)
      .forUpdate()
      .executeTakeFirstOrThrow();
    return { next: Number(r.next), released: parseReleased(r.released) };
  }

  async #save(
    trx: Transaction<Database>,
    network: string,
    address: string,
    next: number,
    released: number[],
  ): Promise<void> {
    await trx
      .updateTable('evm_nonces')
      .set({ next: BigInt(next), released: JSON.stringify(released), updated_at: new Date() })
      .where('network', '=', network)
      .where('address', '=', address.toLowerCase())
      .execute();
  }

  #inTransaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    const trx = ambient.getStore();
    if (trx) return fn(trx);
    return this.db.transaction().execute(fn);
  }
}

function parseReleased(v: unknown): number[] {
  const arr = typeof v === 'string' ? (JSON.parse(v) as unknown) : v;
  return Array.isArray(arr) ? arr.map((n) => Number(n)) : [];
}

function checkNonce(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new TypeError(`nonce-store-pg: ${what} must be a non-negative integer`);
}

// Nonce allocation per (network, address). Policy (docs/chains.md#nonces):
// - next = max(stored next, the chain's pending nonce): after a restart or a transaction sent from
//   elsewhere we never reuse a nonce the chain already counts, and our in-flight transactions the
//   node has not seen yet are not reused either.
// - A nonce given back with `release` (the transaction was never signed, so it can never appear)
//   is handed out again before any new one, so the sequence has no gaps. Released nonces below the
//   chain's count are forgotten (something else used them).
// - Reservations for one address are serialised; different addresses proceed in parallel.
//
// MemoryNonceStore is for tests, devnet and single-process use; production needs a store shared by
// every API/worker replica (PostgreSQL row lock or Redis Lua) with the same semantics.

export interface NonceStore {
  /**
   * Atomically hands out the next nonce. `chainPending` is eth_getTransactionCount(address,
   * 'pending') read just before the call (a lower bound; may be stale).
   */
  reserve(network: string, address: string, chainPending: number): Promise<number>;
  /** Gives back a nonce whose transaction will never be signed or sent. */
  release(network: string, address: string, nonce: number): Promise<void>;
  /** Current state, for diagnostics. */
  peek(network: string, address: string): Promise<{ next: number; released: number[] } | null>;
}

interface Slot {
  next: number;
  released: number[];
}

export class MemoryNonceStore implements NonceStore {
  readonly #slots = new Map<string, Slot>();
  readonly #locks = new Map<string, Promise<unknown>>();

  async reserve(network: string, address: string, chainPending: number): Promise<number> {
    checkNonce(chainPending, 'chainPending');
    return this.#withLock(key(network, address), (k) => {
      const slot = this.#slots.get(k) ?? { next: 0, released: [] };
      slot.released = slot.released.filter((n) => n >= chainPending).sort((a, b) => a - b);
      let nonce: number;
      if (slot.released.length > 0) {
        nonce = slot.released.shift()!;
      } else {
        nonce = Math.max(slot.next, chainPending);
        slot.next = nonce + 1;
      }
      this.#slots.set(k, slot);
      return nonce;
    });
  }

  async release(network: string, address: string, nonce: number): Promise<void> {
    checkNonce(nonce, 'nonce');
    await this.#withLock(key(network, address), (k) => {
      const slot = this.#slots.get(k);
      if (!slot || nonce >= slot.next || slot.released.includes(nonce)) return;
      if (nonce === slot.next - 1) slot.next = nonce;
      else slot.released.push(nonce);
      // Trailing released nonces fold back into `next`.
      slot.released.sort((a, b) => a - b);
      while (slot.released.length > 0 && slot.released[slot.released.length - 1] === slot.next - 1) {
        slot.released.pop();
        slot.next--;
      }
    });
  }

  async peek(network: string, address: string): Promise<{ next: number; released: number[] } | null> {
    const s = this.#slots.get(key(network, address));
    return s ? { next: s.next, released: [...s.released] } : null;
  }

  async #withLock<T>(k: string, fn: (k: string) => T): Promise<T> {
    const prev = this.#locks.get(k) ?? Promise.resolve();
    const run = prev.then(() => fn(k));
    const tail = run.catch(() => undefined);
    this.#locks.set(k, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(k) === tail) this.#locks.delete(k);
    }
  }
}

function key(network: string, address: string): string {
  return `${network}:${address.toLowerCase()}`;
}

function checkNonce(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new TypeError(`nonce-store: ${what} must be a non-negative integer`);
}

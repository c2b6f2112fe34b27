// A small bounded least-recently-used map (pure, no I/O). Used to memoise deterministic public
// computations — HD child public keys and tweaks — that every signing request would repeat.
export class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('lru: max must be a positive integer');
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      // Most recently used last (Map keeps insertion order).
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }
  /** The cached value, or `compute()`'s result, remembered. */
  getOrSet(key: K, compute: () => V): V {
    let v = this.get(key);
    if (v === undefined) {
      v = compute();
      this.set(key, v);
    }
    return v;
  }
  delete(key: K): void {
    this.#map.delete(key);
  }
  clear(): void {
    this.#map.clear();
  }
}

// The coordinator's key registry: public data of every threshold key (scheme, t/n, committee, public
// key, chain code, generation) and its lock state. A JSON file next to cluster.json for now (the
// custody issue moves keys into the database behind the same interface), or in memory.
import { existsSync, readFileSync } from 'node:fs';
import type { SchemeName } from '../crypto/threshold.ts';
import { MpcError } from '../errors.ts';
import { writeFileDurable } from './secure-file.ts';

export interface KeyRecord {
  keyId: string;
  scheme: SchemeName;
  threshold: number;
  parties: number[];
  publicKey: string;
  chainCode: string;
  xpub?: string;
  allowRawSigning: boolean;
  /** DKLs23: public verification shares by party id (hex), for resharing to new nodes. */
  publicShares?: Record<string, string>;
  generation: number;
  createdAt: string;
  locked?: { at: string; reason: string; culprit: number | null; sessionId?: string };
}

export interface KeyRegistry {
  get(keyId: string): KeyRecord | undefined;
  list(): KeyRecord[];
  put(record: KeyRecord): void;
}

export class MemoryKeyRegistry implements KeyRegistry {
  readonly #keys = new Map<string, KeyRecord>();
  get(keyId: string): KeyRecord | undefined {
    const r = this.#keys.get(keyId);
    return r ? structuredClone(r) : undefined;
  }
  list(): KeyRecord[] {
    return [...this.#keys.values()].map((r) => structuredClone(r));
  }
  put(record: KeyRecord): void {
    this.#keys.set(record.keyId, structuredClone(record));
  }
}

/** Re-read on every access so several CLI processes see each other's keys and locks. */
export class FileKeyRegistry implements KeyRegistry {
  constructor(readonly path: string) {}

  #read(): Record<string, KeyRecord> {
    if (!existsSync(this.path)) return {};
    try {
      const j = JSON.parse(readFileSync(this.path, 'utf8')) as { keys?: Record<string, KeyRecord> };
      return j.keys ?? {};
    } catch (e) {
      throw new MpcError(
        'CUSTOS_MPC_NODE_STATE',
        `${this.path}: unreadable key registry (${(e as Error).message})`,
      );
    }
  }

  get(keyId: string): KeyRecord | undefined {
    return this.#read()[keyId];
  }
  list(): KeyRecord[] {
    return Object.values(this.#read());
  }
  put(record: KeyRecord): void {
    const keys = this.#read();
    keys[record.keyId] = record;
    writeFileDurable(this.path, `${JSON.stringify({ version: 1, keys }, null, 2)}\n`, 0o644);
  }
}

// Kysely dialect for PGlite (PostgreSQL compiled to WASM, one session per instance). Queries outside
// a transaction go through PGlite's own locking; a Kysely transaction is mapped onto
// PGlite.transaction(), so nothing else — another in-process query or a pglite-socket client —
// runs inside it.
import type { PGlite, Transaction } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

export class PGliteDialect implements Dialect {
  constructor(private readonly pglite: PGlite) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pglite);
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

class PGliteDriver implements Driver {
  constructor(private readonly pglite: PGlite) {}
  async init(): Promise<void> {
    await this.pglite.waitReady;
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    return new PGliteConnection(this.pglite);
  }
  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await (conn as PGliteConnection).begin(settings);
  }
  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as PGliteConnection).end(true);
  }
  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as PGliteConnection).end(false);
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {
    // The owner of the PGlite instance closes it (it may also serve a socket).
  }
}

class PGliteConnection implements DatabaseConnection {
  private tx: Transaction | undefined;
  private finish: ((commit: boolean) => void) | undefined;
  private finished: Promise<unknown> | undefined;

  constructor(private readonly pglite: PGlite) {}

  async begin(settings: TransactionSettings): Promise<void> {
    let ready!: (tx: Transaction) => void;
    let failed!: (e: unknown) => void;
    const started = new Promise<Transaction>((res, rej) => {
      ready = res;
      failed = rej;
    });
    this.finished = this.pglite
      .transaction(async (tx) => {
        if (settings.isolationLevel) {
          await tx.query(`set transaction isolation level ${settings.isolationLevel}`);
        }
        const commit = await new Promise<boolean>((resolve) => {
          this.finish = resolve;
          ready(tx);
        });
        if (!commit) await tx.rollback();
      })
      .catch((e: unknown) => {
        failed(e);
        throw e;
      });
    this.tx = await started;
  }

  async end(commit: boolean): Promise<void> {
    const finish = this.finish;
    const finished = this.finished;
    this.tx = undefined;
    this.finish = undefined;
    this.finished = undefined;
    finish?.(commit);
    await finished;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const target = this.tx ?? this.pglite;
    const res = await target.query<R>(compiled.sql, compiled.parameters as unknown[], { rowMode: 'object' });
    const affected = res.affectedRows;
    return {
      rows: res.rows,
      ...(affected !== undefined ? { numAffectedRows: BigInt(affected) } : {}),
    };
  }

  // biome-ignore lint/correctness/useYield: streaming is not supported by PGlite; fail loudly
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGlite dialect does not support streaming queries');
  }
}

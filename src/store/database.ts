// Opens the database: embedded PGlite (default; data under <dataDir>/db, or in memory) or PostgreSQL
// (CUSTOS_DATABASE_URL, pooled via pg). Both speak through one Kysely<Database>, with int8 and
// numeric(78,0) mapped to bigint, so everything above this file is dialect-blind.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { redactUrl, StoreError } from '../errors.ts';
import { MIGRATIONS } from './migrations/index.ts';
import { PGliteDialect } from './pglite-dialect.ts';
import { discardTemplate, loadTemplate, saveTemplate } from './pglite-template.ts';
import type { Database } from './schema.ts';
import { PG_OID, parseBigNumeric } from './types.ts';

export type DatabaseKind = 'pglite' | 'postgres';

export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  /** Where the data lives, safe to print (credentials stripped). */
  readonly location: string;
  /** The embedded engine, when kind is 'pglite' (to serve it over a socket in dev). */
  readonly pglite?: PGlite;
  ping(): Promise<void>;
  migrate(): Promise<MigrateResult>;
  close(): Promise<void>;
}

export interface MigrateResult {
  applied: string[];
  total: number;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL URL. Absent: PGlite. */
  databaseUrl?: string;
  /** PGlite data directory; absent with no URL: in-memory PGlite (tests). */
  pgliteDir?: string;
  /** PostgreSQL schema to use (created if missing); tests isolate themselves this way. */
  schema?: string;
  poolSize?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPGlite(opts.pgliteDir);
}

async function openPGlite(dir: string | undefined): Promise<DatabaseHandle> {
  if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const parsers = { [PG_OID.INT8]: parseBigNumeric, [PG_OID.NUMERIC]: parseBigNumeric };
  // A new cluster starts from the initdb template when there is one (src/store/pglite-template.ts).
  const fresh = !dir || !existsSync(join(dir, 'PG_VERSION'));
  const template = fresh ? loadTemplate() : null;
  const create = async (from: Blob | null): Promise<PGlite> => {
    const options = { parsers, ...(from ? { loadDataDir: from } : {}) };
    const p = dir ? new PGlite(dir, options) : new PGlite(options);
    await p.waitReady;
    return p;
  };
  let pglite: PGlite;
  try {
    try {
      pglite = await create(template);
    } catch (e) {
      if (!template) throw e;
      // A template that does not load is dropped; start over with an ordinary initdb.
      discardTemplate();
      if (dir) {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true, mode: 0o700 });
      }
      pglite = await create(null);
    }
  } catch (e) {
    throw new StoreError(
      'CUSTOS_STORE_UNAVAILABLE',
      `cannot open the embedded database${dir ? ` in ${dir}` : ''}`,
      {
        cause: e,
        details: dir ? { dataDir: dir } : {},
      },
    );
  }
  if (fresh && !template) await saveTemplate(pglite);
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return handle(db, 'pglite', dir ?? 'memory', pglite, async () => {
    await db.destroy();
    await pglite.close();
  });
}

async function openPostgres(url: string, opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const schema = opts.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new StoreError('CUSTOS_VALIDATION', 'invalid schema name', { details: { schema } });
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_OID.INT8 || oid === PG_OID.NUMERIC
          ? parseBigNumeric
          : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // A broken idle connection must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const location = redactUrl(url) + (schema ? ` (schema ${schema})` : '');
  try {
    if (schema) await pool.query(`create schema if not exists ${schema}`);
    else await pool.query('select 1');
  } catch (e) {
    await pool.end().catch(() => {});
    throw new StoreError('CUSTOS_STORE_UNAVAILABLE', `cannot connect to PostgreSQL at ${redactUrl(url)}`, {
      cause: e,
      details: { database: redactUrl(url) },
    });
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return handle(
    db,
    'postgres',
    location,
    undefined,
    async () => {
      await db.destroy();
    },
    schema,
  );
}

function handle(
  db: Kysely<Database>,
  kind: DatabaseKind,
  location: string,
  pglite: PGlite | undefined,
  close: () => Promise<void>,
  schema?: string,
): DatabaseHandle {
  let closed = false;
  return {
    db,
    kind,
    location,
    ...(pglite ? { pglite } : {}),
    async ping() {
      try {
        await sql`select 1`.execute(db);
      } catch (e) {
        throw new StoreError('CUSTOS_STORE_UNAVAILABLE', 'database is not answering', { cause: e });
      }
    },
    migrate: () => migrate(db, schema ?? 'public'),
    async close() {
      if (closed) return;
      closed = true;
      await close();
    },
  };
}

/**
 * Applies every pending migration in order; stops at the first failure. The bookkeeping tables
 * live in `schema` explicitly: Kysely looks for them by name across all schemas otherwise.
 */
export async function migrate(db: Kysely<Database>, schema = 'public'): Promise<MigrateResult> {
  const migrator = new Migrator({
    db,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'custos_migrations',
    migrationLockTableName: 'custos_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new StoreError(
      'CUSTOS_MIGRATION_FAILED',
      `migration ${failed?.migrationName ?? '(setup)'} failed`,
      { cause: error, details: { migration: failed?.migrationName ?? null } },
    );
  }
  return {
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
    total: Object.keys(MIGRATIONS).length,
  };
}

// Runs a suite against every database backend: embedded PGlite always, PostgreSQL when
// CUSTOS_TEST_DATABASE_URL is set (each suite in its own fresh schema, dropped afterwards).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type DatabaseHandle, openDatabase } from '../../src/store/database.ts';

export interface BackendCase {
  name: 'pglite' | 'postgres';
  /** undefined = runs; string = skip reason */
  skip: string | undefined;
  open(): Promise<DatabaseHandle>;
}

export function databaseBackends(): BackendCase[] {
  const url = process.env['CUSTOS_TEST_DATABASE_URL'];
  return [
    { name: 'pglite', skip: undefined, open: () => openDatabase({}) },
    {
      name: 'postgres',
      skip: url ? undefined : 'CUSTOS_TEST_DATABASE_URL not set',
      async open() {
        const schema = `t_${randomBytes(6).toString('hex')}`;
        const handle = await openDatabase({ databaseUrl: url!, schema, poolSize: 20 });
        const close = handle.close.bind(handle);
        return {
          ...handle,
          async close() {
            await close();
            const c = new pg.Client({ connectionString: url });
            await c.connect();
            await c.query(`drop schema if exists ${schema} cascade`);
            await c.end();
          },
        };
      },
    },
  ];
}

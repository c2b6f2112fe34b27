// Shared by the identity and audit commands: open the configured database the way `custos db
// migrate` does (PostgreSQL from CUSTOS_DATABASE_URL, a running `custos dev` through dev.json, or the
// embedded files).
import { type Config, loadConfig } from '../config.ts';
import { readDevInfo } from '../roles/data-dir.ts';
import { pgliteDirOf } from '../roles/runtime.ts';
import { type DatabaseHandle, openDatabase } from '../store/database.ts';

export function cliConfig(o: { dataDir?: string }): Config {
  return loadConfig({ overrides: o.dataDir ? { dataDir: o.dataDir } : {} });
}

export async function openCliDatabase(cfg: Config): Promise<DatabaseHandle> {
  if (cfg.databaseUrl) return openDatabase({ databaseUrl: cfg.databaseUrl, poolSize: 2 });
  const running = readDevInfo(cfg.dataDir);
  if (running) return openDatabase({ databaseUrl: running.database, poolSize: 1 });
  return openDatabase({ pgliteDir: pgliteDirOf(cfg) });
}

/** A logger for commands: quiet (warnings and errors on stderr as JSON). */
export async function cliLogger() {
  const { createLogger } = await import('../log/logger.ts');
  return createLogger({ level: 'warn', format: 'json', destination: process.stderr });
}

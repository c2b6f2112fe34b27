// The `custos` command. Commands parse arguments, call a service, and print: human text by default,
// one JSON object with --json. Errors print one line (or {"error":{…}} with --json), never a stack:
// exit code 2 for configuration/usage errors, 1 for everything else.
import { Command, CommanderError } from 'commander';
import { type Config, loadConfig, redactedConfig } from '../config.ts';
import { createLogger } from '../log/logger.ts';
import { startApi } from '../roles/api.ts';
import { readDevInfo } from '../roles/data-dir.ts';
import { StartupCancelled, startDev } from '../roles/dev.ts';
import { pgliteDirOf } from '../roles/runtime.ts';
import { openDatabase } from '../store/database.ts';
import { VERSION } from '../version.ts';
import { registerAdminCommands } from './admin.ts';
import { registerApproveCommands } from './approve.ts';
import { registerAuditCommands } from './audit.ts';
import { registerAuthCommands } from './auth.ts';
import { registerChainWatcher } from './chain-watcher.ts';
import { registerColdCommands } from './cold.ts';
import { registerDevFaucet } from './dev-faucet.ts';
import { registerDevLogin } from './dev-login.ts';
import { registerKeysCommands } from './keys.ts';
import { registerMpcCommands } from './mpc.ts';
import { registerMpcNodeCommands } from './mpc-node.ts';
import { registerOfflineSignerCommands } from './offline-signer.ts';
import { fail, printJson } from './output.ts';

interface GlobalOpts {
  json?: boolean;
}

function config(overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  return loadConfig({ overrides });
}

const program = new Command();
program
  .name('custos')
  .description('Custos: institutional crypto custody with threshold (MPC) signing')
  .version(VERSION, '-V, --version-flag')
  .showHelpAfterError()
  .exitOverride();

program
  .command('version')
  .description('print the version')
  .option('--json', 'machine-readable output')
  .action((o: GlobalOpts) => {
    if (o.json) printJson({ version: VERSION, node: process.versions.node });
    else process.stdout.write(`custos ${VERSION} (node ${process.versions.node})\n`);
  });

const devCmd = program
  .command('dev')
  .description('run the whole platform in one process on embedded defaults')
  .option('--port <port>', 'HTTP port', '8080')
  .option('--data-dir <dir>', 'data directory', './.custos')
  .action(async (o: { port: string; dataDir: string }) => {
    const cfg = config({ port: o.port, dataDir: o.dataDir });
    const logger = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
    const dev = await startDev(cfg, logger);
    process.stdout.write(
      [
        '',
        `  Custos dev is running (data in ${dev.dataDir})`,
        `  API:       ${dev.api}`,
        `  API docs:  ${dev.api}/docs`,
        `  Database:  ${dev.database}`,
        `  Secrets:   ${dev.dataDir}/secrets/ (generated on first run, mode 0600)`,
        ...(dev.demoCredentials
          ? [`  Demo:      ${dev.demoCredentials} (owner login, TOTP, sandbox API key)`]
          : []),
        `  Press Ctrl-C to stop.`,
        '',
      ].join('\n'),
    );
  });

program
  .command('api')
  .description('run the HTTP API (configured by CUSTOS_* variables)')
  .option('--port <port>', 'HTTP port')
  .option('--no-migrate', 'do not apply pending migrations at start')
  .action(async (o: { port?: string; migrate: boolean }) => {
    const cfg = config(o.port ? { port: o.port } : {});
    const logger = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
    const api = await startApi(cfg, logger, { migrate: o.migrate });
    logger.info({ url: api.url }, 'API listening');
  });

const db = program.command('db').description('database operations');
db.command('migrate')
  .description('apply pending migrations (PostgreSQL from CUSTOS_DATABASE_URL, else the embedded database)')
  .option('--data-dir <dir>', 'data directory of the embedded database')
  .option('--json', 'machine-readable output')
  .action(async (o: { dataDir?: string; json?: boolean }) => {
    const cfg = config(o.dataDir ? { dataDir: o.dataDir } : {});
    const running = cfg.databaseUrl ? null : readDevInfo(cfg.dataDir);
    const handle = await openDatabase(
      cfg.databaseUrl
        ? { databaseUrl: cfg.databaseUrl }
        : running
          ? { databaseUrl: running.database, poolSize: 1 }
          : { pgliteDir: pgliteDirOf(cfg) },
    );
    try {
      const r = await handle.migrate();
      if (o.json) printJson({ database: handle.location, applied: r.applied, total: r.total });
      else
        process.stdout.write(
          `${handle.location}: ${r.applied.length === 0 ? 'up to date' : `applied ${r.applied.join(', ')}`} (${r.total} migrations)\n`,
        );
    } finally {
      await handle.close();
    }
  });

const cfgCmd = program.command('config').description('configuration');
cfgCmd
  .command('check')
  .description('validate and print the effective configuration (secrets redacted)')
  .option('--json', 'machine-readable output')
  .action((o: GlobalOpts) => {
    const cfg = redactedConfig(config());
    if (o.json) printJson(cfg);
    else
      for (const [k, v] of Object.entries(cfg)) process.stdout.write(`${k.padEnd(18)} ${v ?? '(unset)'}\n`);
  });

registerMpcCommands(program);
registerDevFaucet(devCmd);
registerDevLogin(devCmd);
registerChainWatcher(program);
registerMpcNodeCommands(program);
registerAdminCommands(program);
registerAuditCommands(program);
registerAuthCommands(program);
registerKeysCommands(program);
registerApproveCommands(program);
registerColdCommands(program);
registerOfflineSignerCommands(program);

// Loaded: hand Ctrl-C back to the commands (bin/custos.js covered the time it took to load).
(globalThis as { custosReleaseEarlySignals?: () => void }).custosReleaseEarlySignals?.();

const wantsJson = process.argv.includes('--json');
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  if (e instanceof StartupCancelled) {
    // Ctrl-C while `custos dev` was starting: everything opened was closed again.
    process.exit(0);
  }
  fail(e, wantsJson);
}

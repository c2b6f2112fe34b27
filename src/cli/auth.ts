// `custos auth rotate-keys`: a new JWT signing key; the previous one keeps verifying for
// CUSTOS_JWT_KEY_OVERLAP_SECONDS (running API processes pick the new key up within a minute).
import type { Command } from 'commander';
import { createSecurityServices } from '../identity/services.ts';
import { cliConfig, cliLogger, openCliDatabase } from './identity-common.ts';
import { printJson } from './output.ts';

export function registerAuthCommands(program: Command): void {
  const auth = program.command('auth').description('authentication keys');
  auth
    .command('rotate-keys')
    .description('rotate the JWT signing key (the old key verifies until the overlap ends)')
    .option('--data-dir <dir>', 'data directory of the embedded database and its secrets')
    .option('--json', 'machine-readable output')
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      const cfg = cliConfig(o);
      const logger = await cliLogger();
      const handle = await openCliDatabase(cfg);
      try {
        const s = await createSecurityServices(cfg, handle.db, logger, { loadTokens: false });
        const r = await s.tokens.rotate(s.audit, { type: 'service', id: 'cli' });
        s.stop();
        const out = { kid: r.kid, retiring: r.retiring, overlapSeconds: cfg.jwtKeyOverlapSeconds };
        if (o.json) printJson(out);
        else
          process.stdout.write(
            `new signing key ${r.kid}; ${r.retiring} previous key(s) verify for ${cfg.jwtKeyOverlapSeconds} s more\n`,
          );
      } finally {
        await handle.close();
      }
    });
}

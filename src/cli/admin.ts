// `custos admin bootstrap --org NAME --email EMAIL`: the first organisation and its owner. The
// one-time credentials (password, TOTP enrolment URI, recovery codes) are printed once, here only.
import type { Command } from 'commander';
import { createSecurityServices } from '../identity/services.ts';
import { cliConfig, cliLogger, openCliDatabase } from './identity-common.ts';
import { printJson } from './output.ts';

export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('installation administration');
  admin
    .command('bootstrap')
    .description('create an organisation and its owner; prints one-time credentials once')
    .requiredOption('--org <name>', 'organisation name')
    .requiredOption('--email <email>', "the owner's email (login name)")
    .option('--data-dir <dir>', 'data directory of the embedded database and its secrets')
    .option('--json', 'machine-readable output')
    .action(async (o: { org: string; email: string; dataDir?: string; json?: boolean }) => {
      const cfg = cliConfig(o);
      const logger = await cliLogger();
      const handle = await openCliDatabase(cfg);
      try {
        await handle.migrate();
        const s = await createSecurityServices(cfg, handle.db, logger, { loadTokens: false });
        const b = await s.identity.bootstrap({ orgName: o.org, email: o.email, actor: 'cli' });
        const out = {
          org: b.org,
          owner: {
            id: b.user.id,
            email: b.user.email,
            password: b.password,
            totpSecret: b.totpSecret,
            totpUri: b.totpUri,
            recoveryCodes: b.recoveryCodes,
          },
        };
        if (o.json) printJson(out);
        else
          process.stdout.write(
            [
              `Organisation "${b.org.name}" created (${b.org.id}).`,
              '',
              'One-time credentials of the owner — shown now and never again:',
              `  email:           ${b.user.email}`,
              `  password:        ${b.password}`,
              `  TOTP secret:     ${b.totpSecret}`,
              `  TOTP URI:        ${b.totpUri}`,
              `  recovery codes:  ${b.recoveryCodes.join('  ')}`,
              '',
              'Add the TOTP URI to an authenticator app, then: POST /v1/auth/login {email, password, totp}.',
              '',
            ].join('\n'),
          );
      } finally {
        await handle.close();
      }
    });
}

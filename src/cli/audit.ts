// `custos audit verify [--from SEQ]`: walks the hash chain and the signed checkpoints and reports
// the first bad sequence number (exit 1), or that everything verifies (exit 0).

import { ed25519 } from '@noble/curves/ed25519.js';
import type { Command } from 'commander';
import { verifyAuditChain } from '../audit/verify.ts';
import { ValidationError } from '../errors.ts';
import { loadSecurityKeys } from '../identity/secrets.ts';
import { cliConfig, openCliDatabase } from './identity-common.ts';
import { printJson } from './output.ts';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('verify the audit chain and checkpoints; reports the first bad sequence number')
    .option('--from <seq>', 'start at this sequence number', '1')
    .option('--data-dir <dir>', 'data directory of the embedded database and its secrets')
    .option('--json', 'machine-readable output')
    .action(async (o: { from: string; dataDir?: string; json?: boolean }) => {
      if (!/^[0-9]{1,19}$/.test(o.from))
        throw new ValidationError('CUSTOS_VALIDATION', '--from must be a sequence number');
      const cfg = cliConfig(o);
      // Checkpoints are checked against our own checkpoint key when it is available here.
      let trusted: Uint8Array | undefined;
      try {
        trusted = ed25519.getPublicKey(loadSecurityKeys(cfg, { generate: false }).auditCheckpointKey);
      } catch {
        trusted = undefined;
      }
      const handle = await openCliDatabase(cfg);
      try {
        const r = await verifyAuditChain(handle.db, {
          fromSeq: BigInt(o.from),
          ...(trusted ? { checkpointPublicKey: trusted } : {}),
          onProgress: (seq) => {
            if (!o.json && process.stderr.isTTY) process.stderr.write(`\rchecked up to ${seq}`);
          },
        });
        if (!o.json && process.stderr.isTTY) process.stderr.write('\n');
        if (o.json) printJson({ ...r, checkpointKeyChecked: trusted !== undefined });
        else if (r.ok)
          process.stdout.write(
            `audit log OK: ${r.checked} entries up to ${r.headSeq ?? 0}, ${r.checkpointsChecked} signed checkpoints${
              trusted
                ? ''
                : ' (checkpoint key not available here: signatures checked against the stored keys)'
            }\n`,
          );
        else process.stdout.write(`audit log BROKEN at sequence ${r.firstBadSeq}: ${r.reason}\n`);
        if (!r.ok) process.exitCode = 1;
      } finally {
        await handle.close();
      }
    });
}

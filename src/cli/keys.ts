// `custos keys approver-init`: an Ed25519 approver key pair, written locally (mode 0600) — the
// private key never leaves this machine; register the public key with POST /v1/approver-keys.
// With --org and --user it also prints the proof of possession that registration needs.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CustosError } from '../errors.ts';
import { generateApproverKey, parseApproverKeyFile, signApproverProof } from '../identity/approver-keys.ts';
import { writeAtomic } from '../roles/data-dir.ts';
import { printJson } from './output.ts';

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('local keys of people (approver keys)');
  keys
    .command('approver-init')
    .description('create an Ed25519 approver key file (0600) and print its public key')
    .requiredOption('--out <file>', 'where to write the private key file')
    .option('--org <orgId>', 'with --user: also print the registration proof')
    .option('--user <userId>', 'your user id')
    .option('--json', 'machine-readable output')
    .action((o: { out: string; org?: string; user?: string; json?: boolean }) => {
      const path = resolve(o.out);
      if (existsSync(path)) throw new CustosError('CUSTOS_CONFLICT', `${path} exists; not overwriting a key`);
      const key = generateApproverKey();
      writeAtomic(path, `${JSON.stringify(key, null, 2)}\n`, 0o600);
      const proof = o.org && o.user ? signApproverProof(key, o.org, o.user) : null;
      const out = { file: path, publicKey: key.publicKey, proof };
      if (o.json) printJson(out);
      else
        process.stdout.write(
          [
            `approver key written to ${path} (mode 0600; keep it private)`,
            `public key: ${key.publicKey}`,
            ...(proof
              ? [`proof:      ${proof}`]
              : ['(run `custos keys approver-proof` with --org and --user for the proof)']),
            'register: POST /v1/approver-keys {"publicKey", "label", "proof"}',
            '',
          ].join('\n'),
        );
    });
  keys
    .command('approver-proof')
    .description('print the registration proof of an existing approver key file')
    .requiredOption('--key <file>', 'approver key file')
    .requiredOption('--org <orgId>', 'your organisation id')
    .requiredOption('--user <userId>', 'your user id')
    .option('--json', 'machine-readable output')
    .action((o: { key: string; org: string; user: string; json?: boolean }) => {
      const key = parseApproverKeyFile(readFileSync(resolve(o.key), 'utf8'));
      const proof = signApproverProof(key, o.org, o.user);
      if (o.json) printJson({ publicKey: key.publicKey, proof });
      else process.stdout.write(`public key: ${key.publicKey}\nproof:      ${proof}\n`);
    });
}

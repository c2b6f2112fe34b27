// `custos cold export | import`: the online half of a cold-vault withdrawal (docs/custody.md, "Cold
// vaults"). `export` writes a withdrawal's signing request to a file to carry to the air-gapped host
// (`custos offline-signer sign` there); `import` submits the signatures file that comes back. The API
// is --api URL (default: the running `custos dev`), the credential --token.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { offlineSignaturesSchema } from '../custody/offline-signing.ts';
import { writeAtomic } from '../roles/data-dir.ts';
import { apiClient } from './api-client.ts';
import { readJsonFile } from './json-file.ts';
import { fail, printFields } from './output.ts';

interface ColdOptions {
  api?: string;
  token?: string;
  dataDir: string;
  json?: boolean;
}

const print = (o: ColdOptions, value: Record<string, unknown>) => printFields(o.json, value);

const apiOptions = (c: Command) =>
  c
    .option('--api <url>', 'API base URL (default: the running custos dev)')
    .option('--token <token>', 'access token')
    .option('--data-dir <dir>', 'data directory of custos dev', './.custos')
    .option('--json', 'machine-readable output');

export function registerColdCommands(program: Command): void {
  const cold = program
    .command('cold')
    .description('cold vaults: carry withdrawals to the offline signer and back');

  apiOptions(
    cold
      .command('export <txId>')
      .description("write a pending_signature withdrawal's signing request to a file (audited)")
      .requiredOption('--out <file>', 'the signing request file to write'),
  ).action((txId: string, o: ColdOptions & { out: string }) =>
    (async () => {
      const call = apiClient(o);
      const req = await call('GET', `/v1/transactions/${encodeURIComponent(txId)}/signing-request`);
      const file = resolve(o.out);
      writeAtomic(file, `${JSON.stringify(req, null, 2)}\n`, 0o600);
      const intent = (req['evidence'] as { intent: Record<string, unknown> }).intent;
      print(o, {
        transactionId: txId,
        file,
        network: req['network'],
        amount: intent['amount'],
        asset: (intent['asset'] as { symbol: string }).symbol,
        destination: intent['destination'],
        digests: (req['digests'] as string[]).length,
      });
    })().catch((e) => fail(e, o.json === true)),
  );

  apiOptions(
    cold
      .command('import [txId]')
      .description('submit the offline signer’s signatures file; the platform checks and broadcasts')
      .requiredOption('--file <file>', 'the signatures file from custos offline-signer sign'),
  ).action((txId: string | undefined, o: ColdOptions & { file: string }) =>
    (async () => {
      const doc = readJsonFile(o.file, offlineSignaturesSchema, 'a signatures file');
      const id = txId ?? doc.transactionId;
      const call = apiClient(o);
      const tx = await call('POST', `/v1/transactions/${encodeURIComponent(id)}/signatures`, doc);
      print(o, { transactionId: id, state: tx['state'], chainTxId: tx['chainTxId'] });
    })().catch((e) => fail(e, o.json === true)),
  );
}

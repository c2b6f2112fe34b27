// `custos mpc …` commands. `mpc demo` runs DKG and signing for one scheme in this process (the
// output contract is fixed: independent verification parses it).
import { type Command, Option } from 'commander';
import { runThresholdDemo } from '../crypto/demo.ts';
import { parseNonHardenedPath } from '../crypto/hd.ts';
import { SCHEME_NAMES, type SchemeName } from '../crypto/threshold.ts';
import { MpcError } from '../errors.ts';
import { printJson } from './output.ts';

export function registerMpcCommands(program: Command): Command {
  const mpc = program.command('mpc').description('threshold signing (MPC) tools');
  mpc
    .command('demo')
    .description('run DKG and a threshold signature in this process, and verify it')
    .addOption(
      new Option('--scheme <scheme>', 'signing scheme').choices([...SCHEME_NAMES]).makeOptionMandatory(),
    )
    .requiredOption('--threshold <t>', 'signers needed (2..n)')
    .requiredOption('--parties <n>', 'parties holding shares (2..20)')
    .option('--digest <hex>', 'ECDSA: the 32-byte digest to sign (64 hex characters)')
    .option('--message <hex>', 'Ed25519/BIP340: the message to sign (hex)')
    .option('--derive <path>', 'non-hardened derivation path, e.g. m/0/7')
    .option('--signers <ids>', 'comma-separated party ids that sign (default 1..t)')
    .option('--json', 'machine-readable output')
    .action((o: DemoOptions) => {
      const params = parseDemoOptions(o);
      const r = runThresholdDemo(params);
      const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
      const sig = r.signature;
      const out = {
        scheme: r.scheme,
        threshold: r.threshold,
        parties: r.parties,
        signers: r.signers,
        publicKey: hex(r.publicKey),
        ...(r.xpub ? { xpub: r.xpub } : {}),
        derivationPath: r.derivationPath,
        signingPublicKey: hex(sig.signingPublicKey),
        signature:
          r.scheme === 'ecdsa-secp256k1'
            ? {
                r: hex(sig.signature.subarray(0, 32)),
                s: hex(sig.signature.subarray(32, 64)),
                recovery: sig.recovery,
              }
            : hex(sig.signature),
        timingsMs: r.timingsMs,
      };
      if (o.json) printJson(out);
      else {
        process.stdout.write(
          [
            `${out.scheme} ${out.threshold}-of-${out.parties}, signers ${out.signers.join(',')}`,
            `public key         ${out.publicKey}`,
            ...(out.xpub ? [`xpub               ${out.xpub}`] : []),
            `derivation path    ${out.derivationPath ?? '(root)'}`,
            `signing public key ${out.signingPublicKey}`,
            `signature          ${typeof out.signature === 'string' ? out.signature : `r=${out.signature.r} s=${out.signature.s} v=${out.signature.recovery}`}`,
            `timings (ms)       ${Object.entries(out.timingsMs)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
            '',
          ].join('\n'),
        );
      }
    });
  return mpc;
}

interface DemoOptions {
  scheme: SchemeName;
  threshold: string;
  parties: string;
  digest?: string;
  message?: string;
  derive?: string;
  signers?: string;
  json?: boolean;
}

function bad(message: string): never {
  throw new MpcError('CUSTOS_MPC_BAD_REQUEST', message);
}

function int(v: string, name: string): number {
  if (!/^[0-9]{1,3}$/.test(v)) bad(`--${name} must be a small positive integer`);
  return Number(v);
}

function parseDemoOptions(o: DemoOptions) {
  const threshold = int(o.threshold, 'threshold');
  const parties = int(o.parties, 'parties');
  if (parties < 2 || parties > 20) bad('--parties must be in 2..20');
  if (threshold < 2 || threshold > parties) bad('--threshold must be in 2..parties');
  let message: Uint8Array;
  if (o.scheme === 'ecdsa-secp256k1') {
    if (o.message !== undefined)
      bad('ecdsa-secp256k1 signs a digest: use --digest (see docs/crypto/dkls23.md)');
    if (o.digest === undefined || !/^[0-9a-fA-F]{64}$/.test(o.digest))
      bad('--digest must be 64 hex characters');
    message = Buffer.from(o.digest, 'hex');
  } else {
    if (o.digest !== undefined) bad(`${o.scheme} signs a message: use --message`);
    if (o.message === undefined || !/^([0-9a-fA-F]{2}){0,65536}$/.test(o.message))
      bad('--message must be hex');
    message = Buffer.from(o.message, 'hex');
  }
  if (o.derive !== undefined) {
    try {
      parseNonHardenedPath(o.derive);
    } catch (e) {
      bad(`--derive: ${(e as Error).message.replace(/^hd: /, '')}`);
    }
  }
  let signers: number[] | undefined;
  if (o.signers !== undefined) {
    signers = o.signers.split(',').map((s) => int(s.trim(), 'signers'));
    if (new Set(signers).size !== signers.length) bad('--signers must not repeat a party');
    if (signers.length !== threshold) bad(`--signers must name exactly ${threshold} parties`);
    if (signers.some((s) => s < 1 || s > parties)) bad(`--signers must be in 1..${parties}`);
  }
  return {
    scheme: o.scheme,
    threshold,
    parties,
    message,
    ...(o.derive !== undefined ? { derivationPath: o.derive } : {}),
    ...(signers ? { signers } : {}),
  };
}

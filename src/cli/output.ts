// How CLI commands print: one JSON object per line with --json (bigints as decimal strings), and the
// single error line / exit code policy shared by every command.
import { ConfigError, CustosError } from '../errors.ts';
import { scrubString } from '../log/logger.ts';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
}

/** One JSON object with --json, else one `key  value` line per field. */
export function printFields(json: boolean | undefined, value: Record<string, unknown>): void {
  if (json) printJson(value);
  else
    process.stdout.write(
      `${Object.entries(value)
        .map(([k, v]) => `${k.padEnd(14)} ${String(v)}`)
        .join('\n')}\n`,
    );
}

const USAGE_CODES = new Set(['CUSTOS_CONFIG_INVALID', 'CUSTOS_VALIDATION', 'CUSTOS_MPC_BAD_REQUEST']);

/** Prints one line (or {"error":{…}} with --json) and exits: 2 for configuration/usage errors, else 1. */
export function fail(err: unknown, json: boolean): never {
  const code = err instanceof CustosError ? err.code : 'CUSTOS_INTERNAL';
  const message =
    err instanceof CustosError
      ? err.shortMessage
      : err instanceof Error
        ? scrubString(err.message)
        : 'unexpected error';
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`custos: ${message}${code !== 'CUSTOS_INTERNAL' ? ` (${code})` : ''}\n`);
  process.exit(err instanceof ConfigError || USAGE_CODES.has(code) ? 2 : 1);
}

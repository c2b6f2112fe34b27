// A JSON file a CLI command is handed (signing requests, signatures files), checked against its
// schema: a clear CUSTOS_VALIDATION naming the file and the first bad field, never a stack trace.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { ValidationError } from '../errors.ts';

export function readJsonFile<S extends z.ZodType>(file: string, schema: S, what: string): z.infer<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(resolve(file), 'utf8'));
  } catch (e) {
    throw new ValidationError('CUSTOS_VALIDATION', `${file}: not a JSON file (${(e as Error).message})`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ValidationError(
      'CUSTOS_VALIDATION',
      `${file}: not ${what} (${i?.path.join('.') || 'kind'}: ${i?.message})`,
    );
  }
  return r.data;
}

// Renders docs/errors.md from ERROR_CODES, so the documented table cannot drift from the code.
import { ERROR_CODES } from './errors.ts';

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERROR_CODES)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, { status, description }]) => `| \`${code}\` | ${status} | ${description} |`);
  return [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts by `node --import tsx scripts/gen-docs.ts`; do not edit by hand. -->',
    '',
    'Every error response has one shape:',
    '',
    '```json',
    '{ "error": { "code": "CUSTOS_…", "message": "short human text", "details": { }, "requestId": "…" } }',
    '```',
    '',
    '- `code` is stable: program against it, not against `message`.',
    '- `details` is present only on 4xx responses, and only with fields that are safe to show.',
    '- A 5xx response never carries the internal message: its `message` is the generic text below, and the',
    '  server log has the full error under the same `requestId`. 502/503/504 name the failing dependency.',
    '- `429` responses carry `Retry-After` (seconds).',
    '- The CLI prints the same codes: one line on stderr, or `{"error":{"code","message"}}` with `--json`;',
    '  exit code 2 for configuration and usage errors, 1 for the rest.',
    '',
    '| code | HTTP status | meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

// The process logger: pino, JSON in production, pretty in a terminal. Redaction happens twice:
// by path (pino's redact, for the well-known places: headers, bodies, config) and by key name
// anywhere in a logged object (a serializer walk), so a secret nested under an unexpected path is
// still censored. Services log through this logger only; console.* is for the CLI's own output.
import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/** Key names (case-insensitive, substring) whose values are never logged. */
const SECRET_KEY_PATTERN =
  /(authorization|cookie|password|passwd|secret|token|api[-_]?key|apikey|private[-_]?key|privkey|share|seed|nonce|mnemonic|credential|totp|signature_key|kek|recovery[-_]?codes?)/i;

export const CENSOR = '[REDACTED]';

/** Paths pino censors directly (fast path for the common places). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.token',
  '*.secret',
  '*.apiKey',
  '*.share',
  '*.privateKey',
  'config.databaseUrl',
  'config.redisUrl',
  'config.natsUrl',
];

/** Deep copy of `value` with every secret-named key censored and URL credentials stripped. */
export function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (depth > 8) return '[depth]';
  if (typeof value === 'string') return scrubString(value);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Uint8Array) return `[${value.length} bytes]`;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1, seen));
  if (value instanceof Error) {
    const out: Record<string, unknown> = {
      type: value.name,
      message: scrubString(value.message),
      stack: value.stack ? scrubString(value.stack) : undefined,
    };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out['code'] = code;
    const details = (value as { details?: unknown }).details;
    if (details !== undefined) out['details'] = scrub(details, depth + 1, seen);
    if (value.cause !== undefined) out['cause'] = scrub(value.cause, depth + 1, seen);
    return out;
  }
  // Class instances (a Fastify request, a Date, a Buffer) are left to their serializers / toJSON.
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY_PATTERN.test(k) && v !== undefined && v !== null ? CENSOR : scrub(v, depth + 1, seen);
  }
  return out;
}

/** Strips credentials from URLs and bearer/API-key looking tokens from free text. */
export function scrubString(s: string): string {
  return s
    .replace(/([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^/\s@]*)@/gi, '$1***:***@')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, '$1 [REDACTED]')
    .replace(/\bck_(live|test)_[A-Za-z0-9_-]+/g, 'ck_$1_[REDACTED]')
    .replace(/\bcrt_[A-Za-z0-9_-]+/g, 'crt_[REDACTED]')
    .replace(
      /\b(password|passwd|secret|token|api[-_]?key|share|seed|mnemonic)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)/gi,
      '$1$2[REDACTED]',
    );
}

export interface CreateLoggerOptions {
  level?: LoggerOptions['level'];
  format?: 'auto' | 'json' | 'pretty';
  /** Write here instead of stdout (tests capture logs this way). */
  destination?: NodeJS.WritableStream;
  name?: string;
}

export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'custos',
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    serializers: {
      err: (e: unknown) => scrub(e),
      error: (e: unknown) => scrub(e),
      req: (r: { method?: string; url?: string; headers?: unknown; ip?: string; id?: string }) => ({
        id: r.id,
        method: r.method,
        url: typeof r.url === 'string' ? scrubString(r.url) : r.url,
        ip: r.ip,
        headers: scrub(r.headers),
      }),
    },
    formatters: {
      // Everything logged as an object goes through the deep scrub.
      log: (obj: Record<string, unknown>) => scrub(obj) as Record<string, unknown>,
    },
    hooks: {
      // Messages are free text too: strip URL credentials and bearer tokens from them.
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubString(a) : a)) as typeof args;
        return method.apply(this, scrubbed);
      },
    },
  };
  if (opts.destination) return pino(options, opts.destination as pino.DestinationStream);
  const pretty =
    opts.format === 'pretty' || ((opts.format ?? 'auto') === 'auto' && process.stdout.isTTY === true);
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true } },
    });
  }
  return pino(options);
}

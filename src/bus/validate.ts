// Argument checks shared by both bus implementations, so a bad subject fails the same way in
// `custos dev` as in production, and NATS subject matching for the in-process bus.
import { BusError } from '../errors.ts';
import type { BusHeaders, ConsumerConfig, StreamConfig } from './types.ts';

const TOKEN = /^[!-~]+$/; // printable ASCII, no space; '.', '*', '>' are excluded below
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const HEADER_KEY = /^[!-9;-~]+$/; // printable ASCII except ':'
const MAX_SUBJECT = 255;

function invalidSubject(what: string, subject: string, why: string): never {
  throw new BusError(
    'CUSTOS_BUS_INVALID_SUBJECT',
    `bus: invalid ${what} ${JSON.stringify(subject)}: ${why}`,
    {
      details: { [what]: subject },
    },
  );
}

export function invalidArgument(message: string, details?: Record<string, unknown>): never {
  throw new BusError('CUSTOS_BUS_INVALID_ARGUMENT', `bus: ${message}`, details ? { details } : {});
}

/** Checks a subject; `wildcards` allows `*` tokens and a final `>` (subscriptions, filters). */
export function checkSubject(subject: string, wildcards: boolean, what = 'subject'): string {
  if (typeof subject !== 'string' || subject.length === 0) invalidSubject(what, String(subject), 'empty');
  if (subject.length > MAX_SUBJECT) invalidSubject(what, subject, `longer than ${MAX_SUBJECT}`);
  const tokens = subject.split('.');
  tokens.forEach((t, i) => {
    if (t === '*' || t === '>') {
      if (!wildcards) invalidSubject(what, subject, 'wildcards are not allowed here');
      if (t === '>' && i !== tokens.length - 1) invalidSubject(what, subject, "'>' must be the last token");
      return;
    }
    if (t.length === 0) invalidSubject(what, subject, 'empty token');
    if (!TOKEN.test(t) || t.includes('*') || t.includes('>')) {
      invalidSubject(what, subject, `bad token ${JSON.stringify(t)}`);
    }
  });
  return subject;
}

/** Stream, durable and queue-group names: `[A-Za-z0-9_-]{1,64}`. */
export function checkName(name: string, what: 'stream' | 'durable' | 'queue'): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    invalidSubject(what, String(name), 'must match [A-Za-z0-9_-]{1,64}');
  }
  return name;
}

export function checkHeaders(headers: BusHeaders | undefined): BusHeaders {
  if (headers === undefined) return {};
  for (const [k, v] of Object.entries(headers)) {
    if (!HEADER_KEY.test(k)) invalidArgument(`invalid header name ${JSON.stringify(k)}`);
    if (k.toLowerCase().startsWith('nats-')) invalidArgument(`header ${k} is reserved (Nats-*)`);
    if (typeof v !== 'string' || /[\r\n]/.test(v)) invalidArgument(`invalid value for header ${k}`);
  }
  return headers;
}

export function checkData(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) invalidArgument('payload must be a Uint8Array');
  return data;
}

/** A positive integer number of milliseconds (or undefined → fallback). */
export function checkMs(value: number | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) invalidArgument(`${what} must be a positive integer (ms)`);
  return value;
}

export function checkPositiveInt(value: number | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) invalidArgument(`${what} must be a positive integer`);
  return value;
}

export function checkMsgId(msgId: string | undefined): string | undefined {
  if (msgId === undefined) return undefined;
  if (typeof msgId !== 'string' || msgId.length === 0 || msgId.length > 256 || /[\r\n]/.test(msgId)) {
    invalidArgument('msgId must be 1–256 characters without line breaks');
  }
  return msgId;
}

/** NATS subject matching: `*` matches one token, a final `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const pt = p[i];
    if (pt === '>') return s.length > i;
    if (i >= s.length) return false;
    if (pt !== '*' && pt !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether two (possibly wildcard) subjects could match a common subject. */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const xt = x[i];
    const yt = y[i];
    if (xt === '>' || yt === '>') return xt !== undefined && yt !== undefined;
    if (xt === undefined || yt === undefined) return false;
    if (xt !== '*' && yt !== '*' && xt !== yt) return false;
  }
  return true;
}

/** Validates a stream configuration and fills in defaults (shared with the NATS bus). */
export function checkStreamConfig(
  config: StreamConfig,
): Required<Pick<StreamConfig, 'name' | 'subjects' | 'retention'>> & StreamConfig {
  checkName(config.name, 'stream');
  if (!Array.isArray(config.subjects) || config.subjects.length === 0) {
    invalidArgument(`stream ${config.name}: at least one subject is required`);
  }
  for (const s of config.subjects) checkSubject(s, true);
  const retention = config.retention ?? 'limits';
  if (retention !== 'limits' && retention !== 'workqueue')
    invalidArgument('retention must be limits or workqueue');
  checkMs(config.duplicateWindowMs, 'duplicateWindowMs', 1);
  checkMs(config.maxAgeMs, 'maxAgeMs', 1);
  checkPositiveInt(config.maxMsgs, 'maxMsgs', 1);
  checkPositiveInt(config.replicas, 'replicas', 1);
  if (config.storage !== undefined && config.storage !== 'file' && config.storage !== 'memory') {
    invalidArgument('storage must be file or memory');
  }
  return { ...config, subjects: [...config.subjects], retention };
}

/** Validates a consumer configuration (shared with the NATS bus). */
export function checkConsumerConfig(config: ConsumerConfig): ConsumerConfig {
  checkName(config.stream, 'stream');
  checkName(config.durable, 'durable');
  if (config.filterSubject !== undefined) checkSubject(config.filterSubject, true, 'filterSubject');
  checkMs(config.ackWaitMs, 'ackWaitMs', 1);
  checkPositiveInt(config.maxAckPending, 'maxAckPending', 1);
  if (config.maxDeliver !== undefined && config.maxDeliver !== -1) {
    checkPositiveInt(config.maxDeliver, 'maxDeliver', 1);
  }
  if (config.backoffMs !== undefined) {
    if (!Array.isArray(config.backoffMs) || config.backoffMs.length === 0) {
      invalidArgument('backoffMs must be a non-empty array');
    }
    for (const b of config.backoffMs) checkMs(b, 'backoffMs[]', 1);
    const max = config.maxDeliver ?? -1;
    if (max !== -1 && max <= config.backoffMs.length) {
      invalidArgument('maxDeliver must be greater than backoffMs.length');
    }
  }
  return { ...config, ...(config.backoffMs ? { backoffMs: [...config.backoffMs] } : {}) };
}

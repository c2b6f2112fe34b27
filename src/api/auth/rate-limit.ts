// Rate limiting: two token buckets per subject (an API key, a user, a source IP) — a burst bucket
// (default 10, refilling 10/s) and a sustained one (default 100 per minute) — in SharedState, so with
// CUSTOS_REDIS_URL every API replica draws from the same buckets. A rejection is a violation (at
// most one per retry period, so one burst counts once); `abuseViolations` of them within
// `abuseWindowSeconds` block the subject for `blockSeconds` and raise a security event.
import { CustosError } from '../../errors.ts';
import type { RequestContext } from '../../identity/principal.ts';
import type { SecurityEvents } from '../../identity/security-events.ts';
import type { SharedState } from '../../state/types.ts';

export interface RateLimitSettings {
  burst: number;
  perMinute: number;
  abuseViolations: number;
  abuseWindowSeconds: number;
  blockSeconds: number;
}

export interface RateLimitSubject {
  kind: 'ip' | 'api_key' | 'user';
  id: string;
  orgId: string | null;
  /** Per-key overrides. */
  burst?: number | null;
  perMinute?: number | null;
}

export class RateLimitError extends CustosError {
  override name = 'RateLimitError';
  get retryAfterSeconds(): number {
    return (this.details?.['retryAfterSeconds'] as number | undefined) ?? 1;
  }
}

export class RateLimiter {
  constructor(
    private readonly state: SharedState,
    readonly settings: RateLimitSettings,
    private readonly events: SecurityEvents,
  ) {}

  /** Takes one request from the subject's buckets; throws RateLimitError (429) when it may not pass. */
  async take(s: RateLimitSubject, ctx: RequestContext): Promise<void> {
    const base = `rl:${s.kind}:${s.id}`;
    const blocked = await this.state.get(`${base}:block`);
    if (blocked !== null) {
      const ms = Math.max(1000, Number(blocked) - Date.now());
      throw new RateLimitError('CUSTOS_RATE_LIMIT_BLOCKED', 'blocked for repeated rate-limit violations', {
        details: { retryAfterSeconds: Math.ceil(ms / 1000), scope: s.kind },
      });
    }
    const burst = s.burst ?? this.settings.burst;
    const perMinute = s.perMinute ?? this.settings.perMinute;
    for (const [suffix, capacity, refillPerSec] of [
      ['s', burst, burst],
      ['m', perMinute, perMinute / 60],
    ] as const) {
      const r = await this.state.consume(`${base}:${suffix}:${capacity}`, { capacity, refillPerSec });
      if (!r.allowed) {
        const blockedNow = await this.violation(base, s, r.retryAfterMs, ctx);
        if (blockedNow) {
          throw new RateLimitError(
            'CUSTOS_RATE_LIMIT_BLOCKED',
            'blocked for repeated rate-limit violations',
            {
              details: { retryAfterSeconds: this.settings.blockSeconds, scope: s.kind },
            },
          );
        }
        throw new RateLimitError('CUSTOS_RATE_LIMITED', 'too many requests', {
          details: { retryAfterSeconds: Math.max(1, Math.ceil(r.retryAfterMs / 1000)), scope: s.kind },
        });
      }
    }
  }

  /** Lifts a block (operators, tests). */
  async unblock(kind: RateLimitSubject['kind'], id: string): Promise<void> {
    await this.state.delete(`rl:${kind}:${id}:block`);
    await this.state.delete(`rl:${kind}:${id}:viol`);
  }

  private async violation(
    base: string,
    s: RateLimitSubject,
    retryAfterMs: number,
    ctx: RequestContext,
  ): Promise<boolean> {
    const ttlMs = Math.max(1, Math.ceil(retryAfterMs));
    if (!(await this.state.setIfAbsent(`${base}:mark`, '1', { ttlMs }))) return false;
    const n = await this.state.incr(`${base}:viol`, { ttlMs: this.settings.abuseWindowSeconds * 1000 });
    if (n < this.settings.abuseViolations) return false;
    const until = Date.now() + this.settings.blockSeconds * 1000;
    const stored = await this.state.setIfAbsent(`${base}:block`, String(until), {
      ttlMs: this.settings.blockSeconds * 1000,
    });
    if (stored) {
      await this.events.raise({
        orgId: s.orgId,
        kind: 'rate_limit_blocked',
        severity: 'critical',
        actorType: s.kind === 'ip' ? 'anonymous' : s.kind,
        actorId: s.kind === 'ip' ? null : s.id,
        ip: ctx.ip,
        requestId: ctx.requestId,
        details: {
          subject: s.kind,
          violations: n,
          windowSeconds: this.settings.abuseWindowSeconds,
          blockedUntil: new Date(until).toISOString(),
        },
      });
    }
    return true;
  }
}

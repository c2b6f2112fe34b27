// The RBAC matrix check shared by the identity and custody route suites: every recorded route × every
// role, an API key with every grantable scope and no credentials, against docs/security/rbac.md; and
// every route called with another organisation's credentials and this organisation's ids.
import type { FastifyInstance } from 'fastify';
import { ROLES, type Role, rbac, roleHas } from '../../src/identity/rbac.ts';
import type { RecordedRoute, TestOrg } from './identity-harness.ts';

export type Who = Role | 'api_key' | 'none';

export interface RouteCase<F> {
  /**
   * What the route must require, pinned here independently of the route's own declaration (so a
   * route that declares the wrong permission fails): a row of the matrix, 'authenticated' or 'public'.
   */
  permission: string;
  url: (f: F) => string;
  body?: (f: F, actorUserId: string | null) => unknown;
  headers?: (f: F) => Record<string, string>;
}

export interface Credential {
  token: string | null;
  userId: string | null;
}

/** The credential `who` uses in a fixture with one user per role and an all-scopes API key. */
export function credentialOf(f: { org: TestOrg; apiKey: string }, who: Who): Credential {
  if (who === 'none') return { token: null, userId: null };
  if (who === 'api_key') return { token: f.apiKey, userId: null };
  return { token: f.org.users[who].token, userId: f.org.users[who].id };
}

const DENIAL_CODES = new Set([
  'CUSTOS_UNAUTHENTICATED',
  'CUSTOS_FORBIDDEN',
  'CUSTOS_MFA_ENROLLMENT_REQUIRED',
]);

export async function callRoute(
  app: FastifyInstance,
  method: string,
  url: string,
  token: string | null,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const r = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(body !== undefined ? { payload: body as object } : {}),
  });
  let code: string | undefined;
  try {
    code = r.json()?.error?.code;
  } catch {
    code = undefined;
  }
  return { status: r.statusCode, code, body: r.body };
}

const keyOf = (r: RecordedRoute) => `${r.method} ${r.url}`;

/** Problems with coverage: a route without a case, or one that declares no permission. */
export function coverageFailures<F>(routes: RecordedRoute[], cases: Record<string, RouteCase<F>>): string[] {
  const failures: string[] = [];
  for (const r of routes) {
    if (!r.url.startsWith('/v1/') && !r.url.startsWith('/.well-known/')) continue;
    const c = cases[keyOf(r)];
    if (!c) failures.push(`no RBAC test case for ${keyOf(r)}`);
    else if (c.permission !== (r.public ? 'public' : r.permission))
      failures.push(`${keyOf(r)} declares ${r.public ? 'public' : r.permission}, expected ${c.permission}`);
    if (!r.public && !r.permission) failures.push(`${keyOf(r)} declares nothing`);
    if (r.permission && r.permission !== 'authenticated' && !rbac().descriptions.has(r.permission))
      failures.push(`${keyOf(r)}: ${r.permission} not in the matrix`);
  }
  for (const k of Object.keys(cases))
    if (!routes.some((r) => keyOf(r) === k)) failures.push(`case ${k} names no route`);
  return failures;
}

/**
 * Calls every route that has a case as every role, an API key and nobody; returns each answer that
 * disagrees with the matrix. Allowed = neither a denial code nor a 5xx (a domain refusal such as
 * 404 or 409 is an answer past the permission check); denied = exactly the expected denial code.
 */
export async function matrixFailures<F>(
  app: FastifyInstance,
  routes: RecordedRoute[],
  cases: Record<string, RouteCase<F>>,
  f: F,
  credential: (who: Who) => Credential,
): Promise<string[]> {
  const whos: Who[] = ['none', ...ROLES, 'api_key'];
  const failures: string[] = [];
  for (const r of routes.filter((x) => cases[keyOf(x)])) {
    const c = cases[keyOf(r)]!;
    let anonymous: { status: number; code: string | undefined } | undefined;
    for (const who of whos) {
      const cred = credential(who);
      const res = await callRoute(
        app,
        r.method,
        c.url(f),
        cred.token,
        c.body?.(f, cred.userId),
        c.headers?.(f),
      );
      const label = `${keyOf(r)} as ${who}: ${res.status} ${res.code ?? ''}`;
      if (c.permission === 'public') {
        // Public routes answer the same whoever calls (credentials are neither needed nor used).
        anonymous ??= res;
        if (res.status !== anonymous.status || res.code !== anonymous.code || res.code === 'CUSTOS_FORBIDDEN')
          failures.push(`public ${label}`);
        continue;
      }
      let expectAllowed: boolean;
      if (who === 'none') expectAllowed = false;
      else if (c.permission === 'authenticated') expectAllowed = true;
      else if (who === 'api_key') expectAllowed = rbac().apiKeyGrantable.has(c.permission);
      else expectAllowed = roleHas(who, c.permission);
      const denied = res.code !== undefined && DENIAL_CODES.has(res.code);
      if (expectAllowed && (denied || res.status >= 500)) failures.push(`expected allowed — ${label}`);
      if (!expectAllowed) {
        const want = who === 'none' ? 'CUSTOS_UNAUTHENTICATED' : 'CUSTOS_FORBIDDEN';
        if (res.code !== want) failures.push(`expected ${want} — ${label}`);
      }
    }
  }
  return failures;
}

/**
 * Calls every route with organisation B's credentials and organisation A's ids (path, query, body)
 * and returns every answer that carries one of A's `secrets` or succeeds on a path naming A's id.
 */
export async function crossTenantFailures<F>(
  app: FastifyInstance,
  routes: RecordedRoute[],
  cases: Record<string, RouteCase<F>>,
  a: F,
  credentialsOfB: Record<string, Credential>,
  secrets: string[],
  adjustUrl: (method: string, url: string) => string = (_m, u) => u,
): Promise<string[]> {
  const failures: string[] = [];
  for (const r of routes.filter((x) => cases[keyOf(x)])) {
    const c = cases[keyOf(r)]!;
    for (const [who, cred] of Object.entries(credentialsOfB)) {
      const url = adjustUrl(r.method, c.url(a));
      const res = await callRoute(app, r.method, url, cred.token, c.body?.(a, cred.userId), c.headers?.(a));
      for (const x of secrets)
        if (res.body.includes(x)) failures.push(`${keyOf(r)} as B/${who} returned A's ${x}`);
      if (r.url.includes(':') && res.status >= 200 && res.status < 300)
        failures.push(`${keyOf(r)} as B/${who}: ${res.status} on A's id`);
    }
  }
  return failures;
}

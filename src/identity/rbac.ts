// Roles and permissions, read from docs/security/rbac.md — the one source of truth: the table there
// is parsed once at start-up, so the documented matrix and the enforced matrix cannot drift.
import { readFileSync } from 'node:fs';
import { AuthError, CustosError } from '../errors.ts';

export const ROLES = ['owner', 'admin', 'security_officer', 'operator', 'approver', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/** Roles that must use TOTP as a second factor. */
export const MFA_ROLES: ReadonlySet<Role> = new Set(['owner', 'admin', 'security_officer', 'approver']);

/** A permission name from the matrix, e.g. `users:read`. Checked against the matrix at registration. */
export type Permission = string;

export interface RbacMatrix {
  permissions: Permission[];
  grants: ReadonlyMap<Role, ReadonlySet<Permission>>;
  /** Permissions an API key may be given as scopes. */
  apiKeyGrantable: ReadonlySet<Permission>;
  descriptions: ReadonlyMap<Permission, string>;
}

export const RBAC_DOC = new URL('../../docs/security/rbac.md', import.meta.url);

export function isRole(x: string): x is Role {
  return (ROLES as readonly string[]).includes(x);
}

/** Parses the matrix between the rbac-matrix markers of the document. */
export function parseRbacMatrix(markdown: string): RbacMatrix {
  const start = markdown.indexOf('<!-- rbac-matrix:start -->');
  const end = markdown.indexOf('<!-- rbac-matrix:end -->');
  if (start < 0 || end < start) throw bad('rbac-matrix markers not found');
  const lines = markdown
    .slice(start, end)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('|'));
  const cells = (l: string) =>
    l
      .slice(1, l.endsWith('|') ? -1 : undefined)
      .split('|')
      .map((c) => c.trim());
  const header = cells(lines[0] ?? '');
  const expected = ['permission', ...ROLES, 'API key', 'what it allows'];
  if (header.join('|') !== expected.join('|')) throw bad(`header must be: ${expected.join(' | ')}`);
  const grants = new Map<Role, Set<Permission>>(ROLES.map((r) => [r, new Set<Permission>()]));
  const apiKeyGrantable = new Set<Permission>();
  const descriptions = new Map<Permission, string>();
  const permissions: Permission[] = [];
  for (const line of lines.slice(2)) {
    const c = cells(line);
    if (c.length !== expected.length) throw bad(`row has ${c.length} cells: ${line}`);
    const m = /^`([a-z_]+:[a-z_]+)`$/.exec(c[0]!);
    if (!m) throw bad(`bad permission cell ${c[0]}`);
    const perm = m[1]!;
    if (descriptions.has(perm)) throw bad(`duplicate permission ${perm}`);
    permissions.push(perm);
    descriptions.set(perm, c[c.length - 1]!);
    for (let i = 0; i <= ROLES.length; i++) {
      const v = c[i + 1]!;
      if (v !== '✓' && v !== '') throw bad(`cell must be ✓ or empty, got "${v}" (${perm})`);
      if (v !== '✓') continue;
      if (i < ROLES.length) grants.get(ROLES[i]!)!.add(perm);
      else apiKeyGrantable.add(perm);
    }
  }
  if (permissions.length === 0) throw bad('no permissions');
  return { permissions, grants, apiKeyGrantable, descriptions };
}

function bad(msg: string): CustosError {
  return new CustosError('CUSTOS_CONFIG_INVALID', `docs/security/rbac.md: ${msg}`);
}

let cached: RbacMatrix | undefined;

/** The matrix of this build (read once). */
export function rbac(): RbacMatrix {
  cached ??= parseRbacMatrix(readFileSync(RBAC_DOC, 'utf8'));
  return cached;
}

export function isPermission(p: string): boolean {
  return rbac().descriptions.has(p);
}

export function roleHas(role: Role, permission: Permission): boolean {
  return rbac().grants.get(role)?.has(permission) ?? false;
}

export function permissionsOf(role: Role): ReadonlySet<Permission> {
  return rbac().grants.get(role) ?? new Set();
}

/**
 * Separation of duties: nobody approves (or otherwise signs off) a request they initiated. Compare
 * user ids; an API key's requests are attributed to the user who created the key.
 */
export function assertNotInitiator(p: { initiatorUserId: string | null; approverUserId: string }): void {
  if (p.initiatorUserId !== null && p.initiatorUserId === p.approverUserId) {
    throw new AuthError('CUSTOS_SELF_APPROVAL', 'you cannot approve a request you initiated');
  }
}

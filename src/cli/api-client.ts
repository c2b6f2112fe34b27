// The REST calls of CLI commands that talk to a running API (`custos approve`, `custos cold`): the
// base URL from --api or the running `custos dev`, the credential from --token, and errors as the
// API's own code and message.
import { resolve } from 'node:path';
import { ConfigError, CustosError } from '../errors.ts';
import { readDevInfo } from '../roles/data-dir.ts';

export interface ApiClientOptions {
  api?: string;
  token?: string;
  dataDir: string;
}

export type ApiCall = (method: string, path: string, body?: unknown) => Promise<Record<string, unknown>>;

export function apiBaseOf(o: ApiClientOptions): string {
  if (o.api) return o.api.replace(/\/$/, '');
  const dev = readDevInfo(resolve(o.dataDir));
  if (!dev) throw new ConfigError('CUSTOS_VALIDATION', 'no running custos dev found: give --api URL');
  return dev.api;
}

export function apiClient(o: ApiClientOptions): ApiCall {
  const api = apiBaseOf(o);
  const token = o.token;
  if (!token) throw new ConfigError('CUSTOS_VALIDATION', 'give --token (an access token or API key)');
  return async (method, path, body) => {
    let res: Response;
    try {
      res = await fetch(`${api}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new CustosError(
        'CUSTOS_API_UNREACHABLE',
        `cannot reach the API at ${api}${cause ? ` (${cause})` : ''}`,
      );
    }
    let j: Record<string, unknown>;
    try {
      j = (await res.json()) as Record<string, unknown>;
    } catch {
      throw new CustosError(
        'CUSTOS_API_UNREACHABLE',
        `${api} answered HTTP ${res.status} without JSON: is it a Custos API?`,
      );
    }
    if (!res.ok) {
      const e = j['error'] as { code?: string; message?: string } | undefined;
      throw new CustosError(
        (e?.code ?? 'CUSTOS_INTERNAL') as 'CUSTOS_INTERNAL',
        e?.message ?? `HTTP ${res.status}`,
      );
    }
    return j;
  };
}

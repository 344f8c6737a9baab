import type { IncomingMessage } from 'node:http';

/** The path of a request target (origin-form or absolute-form), without query; null when unusable. */
export function requestPath(req: IncomingMessage): string | null {
  const target = req.url ?? '';
  if (target.startsWith('/')) return target.split(/[?#]/, 1)[0] ?? null;
  try {
    return new URL(target).pathname;
  } catch {
    return null;
  }
}

/** True for `application/json`, optionally with `charset=utf-8`. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...params] = header.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((param) => {
    const [key, value] = param.split('=').map((p) => p.trim().replace(/^"|"$/g, ''));
    return key !== 'charset' || value === 'utf-8' || value === 'utf8';
  });
}

export function formatUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

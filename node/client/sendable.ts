import { RpcErrorCodes } from '../rpc/errors.js';
import { RpcError } from './errors.js';

/** Deeper than the server accepts anyway; also stops a cyclic value from recursing without end. */
const MAX_DEPTH = 256;

/**
 * JSON.stringify writes NaN and ±Infinity as null and -0 as 0, so such a number
 * would reach the node as another value than the caller passed. The client
 * refuses it before sending, with the error the node gives a number it cannot
 * carry exactly: INVALID_ARGS, `data: { code, path, reason }` (path into the
 * params). Other numbers (1.5, 2^53) are sent as they are and the node judges.
 */
export function unsendableParams(method: string, params: unknown): RpcError | undefined {
  const found = findUnsendable(params, 0);
  if (!found) return undefined;
  const reason = `${found.value} cannot be sent in JSON (it would arrive as ${JSON.stringify(found.value)})`;
  return new RpcError(
    { code: RpcErrorCodes.INVALID_ARGS, message: `params${found.path}: ${reason}`, data: { code: 'INVALID_ARGS', path: found.path, reason } },
    method,
  );
}

function findUnsendable(value: unknown, depth: number): { path: string; value: string } | undefined {
  if (typeof value === 'number') {
    if (Object.is(value, -0)) return { path: '', value: '-0' };
    return Number.isFinite(value) ? undefined : { path: '', value: String(value) };
  }
  if (typeof value !== 'object' || value === null || depth >= MAX_DEPTH) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = findUnsendable(item, depth + 1);
    if (found) return { path: `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}${found.path}`, value: found.value };
  }
  return undefined;
}

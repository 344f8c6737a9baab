import { ClientError } from './errors.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface TransportOptions {
  fetch: FetchLike;
  timeoutMs: number;
  headers: Record<string, string>;
}

export interface HttpReply {
  status: number;
  /** The parsed JSON body; undefined for an empty body (HTTP 204). */
  body: unknown;
}

/** POSTs a JSON text and parses the JSON answer; throws ClientError on transport failures. */
export async function postJson(url: string, text: string, options: TransportOptions): Promise<HttpReply> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  let raw: string;
  try {
    response = await options.fetch(url, {
      method: 'POST',
      headers: { ...options.headers, 'content-type': 'application/json', accept: 'application/json' },
      body: text,
      signal,
    });
    raw = await response.text();
  } catch (err) {
    if (signal.aborted) throw new ClientError('timeout', `no answer from ${url} within ${options.timeoutMs} ms`, undefined, { cause: err });
    throw new ClientError('network', `request to ${url} failed: ${(err as Error)?.message ?? String(err)}`, undefined, { cause: err });
  }
  if (raw.length === 0) {
    if (response.status === 204 || response.ok) return { status: response.status, body: undefined };
    throw new ClientError('http', `HTTP ${response.status} from ${url}`, response.status);
  }
  try {
    return { status: response.status, body: JSON.parse(raw) as unknown };
  } catch (err) {
    const kind = response.ok ? 'protocol' : 'http';
    throw new ClientError(kind, `HTTP ${response.status} from ${url} with a body that is not JSON`, response.status, { cause: err });
  }
}

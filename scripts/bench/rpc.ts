import { Agent, request } from 'node:http';

/** A bare JSON-RPC batch call: the benchmark controls batching itself. */
export interface RpcReply {
  id: number;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

let nextId = 1;

/**
 * node:http with keep-alive rather than fetch: the load generator shares the
 * cores with the nodes, and a fetch round trip costs it about three times the
 * CPU (~0.6-0.9 ms against ~0.2-0.3 ms here), which the block watchers, polling
 * every node every few milliseconds, multiply.
 */
const agent = new Agent({ keepAlive: true });

class StaleSocketError extends Error {}
const STALE_SOCKET_ATTEMPTS = 4;

function post(url: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A keep-alive socket the server had already closed: the request never reached the server, so sending it again is safe.
      if (req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) reject(new StaleSocketError(`${err.message} (${err.code}, a reused keep-alive socket)`));
      else reject(new Error(`${err.message} (${err.code ?? 'no code'}, ${req.reusedSocket ? 'reused' : 'new'} socket)`));
    });
    req.end(body);
  });
}

export async function rpcBatch(url: string, calls: { method: string; params: unknown[] }[]): Promise<RpcReply[]> {
  const body = JSON.stringify(calls.map((c) => ({ jsonrpc: '2.0', id: nextId++, method: c.method, params: c.params })));
  let text: string;
  try {
    // Several idle sockets of the pool can be closed by the server at the same moment (its keep-alive
    // timeout), so the next one taken may be stale too.
    for (let attempt = 1; ; attempt++) {
      try {
        text = await post(url, body);
        break;
      } catch (err) {
        if (!(err instanceof StaleSocketError) || attempt >= STALE_SOCKET_ATTEMPTS) throw err;
      }
    }
  } catch (err) {
    // Say which node and call failed: with several nodes an error code alone does not.
    throw new Error(`${calls[0]?.method ?? 'batch'} to ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let replies: RpcReply[] | RpcReply;
  try {
    replies = JSON.parse(text) as RpcReply[] | RpcReply;
  } catch {
    throw new Error(`${calls[0]?.method ?? 'batch'} to ${url}: not JSON: ${text.slice(0, 200)}`);
  }
  // A whole batch refused (e.g. too large) is one error object, not an array.
  if (!Array.isArray(replies)) throw new Error(`batch refused by ${url}: ${replies.error?.message ?? JSON.stringify(replies)}`);
  // JSON-RPC lets a server answer a batch in any order; ids grow with the calls, so this is call order.
  return replies.sort((a, b) => a.id - b.id);
}

export async function rpcCall<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const [reply] = await rpcBatch(url, [{ method, params }]);
  if (!reply || reply.error) throw new Error(`${method}: ${reply?.error?.message ?? 'no reply'}`);
  return reply.result as T;
}

/** A bare JSON-RPC batch call: the benchmark controls batching itself. */
export interface RpcReply {
  id: number;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

let nextId = 1;

/**
 * True when fetch failed because it reused a keep-alive socket the server had
 * already closed: the request never reached the server, so sending it again is safe.
 */
function isStaleSocket(err: unknown): boolean {
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code === 'UND_ERR_SOCKET' || cause?.message === 'other side closed';
}

export async function rpcBatch(url: string, calls: { method: string; params: unknown[] }[]): Promise<RpcReply[]> {
  const body = JSON.stringify(calls.map((c) => ({ jsonrpc: '2.0', id: nextId++, method: c.method, params: c.params })));
  const post = async (): Promise<RpcReply[]> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return (await res.json()) as RpcReply[];
  };
  try {
    return await post();
  } catch (err) {
    if (!isStaleSocket(err)) throw err;
    return post();
  }
}

export async function rpcCall<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const [reply] = await rpcBatch(url, [{ method, params }]);
  if (!reply || reply.error) throw new Error(`${method}: ${reply?.error?.message ?? 'no reply'}`);
  return reply.result as T;
}

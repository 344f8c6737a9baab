/** A bare JSON-RPC batch call: the benchmark controls batching itself. */
export interface RpcReply {
  id: number;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

let nextId = 1;

export async function rpcBatch(url: string, calls: { method: string; params: unknown[] }[]): Promise<RpcReply[]> {
  const body = calls.map((c) => ({ jsonrpc: '2.0', id: nextId++, method: c.method, params: c.params }));
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await res.json()) as RpcReply[];
}

export async function rpcCall<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const [reply] = await rpcBatch(url, [{ method, params }]);
  if (!reply || reply.error) throw new Error(`${method}: ${reply?.error?.message ?? 'no reply'}`);
  return reply.result as T;
}

/** JSON-RPC from the page to the node that served it (same origin, so CORS never comes into it). */
export class RpcCallError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

let nextId = 1;

export async function call<T>(method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch('/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  const body = (await response.json()) as { result?: T; error?: { code: number; message: string } };
  if (body.error) throw new RpcCallError(body.error.code, body.error.message);
  return body.result as T;
}

export const METHOD_NOT_FOUND = -32601;

/**
 * A newHeads subscription that comes back by itself: when the socket closes
 * (the node restarted, or dropped a slow page) it reconnects after a backoff
 * that doubles up to 30 s, and `onReconnect` lets the page catch up on what it
 * missed.
 */
export function followHeads(onHead: (block: unknown) => void, onState: (state: 'live' | 'reconnecting') => void, onReconnect: () => void): void {
  let delay = 500;
  const open = (): void => {
    const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`);
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'chain_subscribe', params: ['newHeads'] }));
    });
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; method?: string; params?: { result: unknown } };
      if (message.id === 1) {
        delay = 500;
        onState('live');
        onReconnect();
      } else if (message.method === 'chain_subscription' && message.params) onHead(message.params.result);
    });
    socket.addEventListener('close', () => {
      onState('reconnecting');
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  open();
}

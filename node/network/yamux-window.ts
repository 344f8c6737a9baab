/**
 * Yamux window updates, batched.
 *
 * `@chainsafe/libp2p-yamux` (8.0.1, and its source as of this writing) answers every data frame it
 * receives with a window-update frame, so that a peer that sends many small messages (votes, pushed
 * transaction batches, their acknowledgements) gets one extra frame back per message: a Noise
 * encryption, a socket write and, on the other side, a read, a decryption and a frame to parse. In a
 * profile of four nodes at 350 tx/s those updates were about 7 % of each node's main thread, and a
 * third of its socket writes.
 *
 * The reference implementation (hashicorp/yamux, `Stream.sendWindowUpdate`) waits instead until the
 * receiver has taken at least half of its window before it grants credit back. This does the same:
 * an established stream skips the update while less than half of its receive window is used. Flow
 * control is unchanged in what matters: a sender only stalls once it has used its whole window, and
 * by then more than half of it is used, so the update is sent. Frames that carry flags (SYN, ACK)
 * and paused streams take the library's own path untouched.
 *
 * The library creates its streams itself, so this wraps the method on the class it exports
 * (`@chainsafe/libp2p-yamux/stream`); `installYamuxWindowBatching` is idempotent. It relies on the
 * stream's `state`, `recvWindow` and `recvWindowCapacity` fields, which is why the dependency is
 * pinned and why `test/unit/node/network/yamux-window.test.ts` counts the updates.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';

const INSTALLED = Symbol.for('cloister.yamuxWindowBatching');

type Patched = typeof YamuxStream.prototype & { [INSTALLED]?: true };

/** Whether an update now would grant back less than half the window on a plain established stream. */
export function windowUpdateCanWait(stream: YamuxStream): boolean {
  if (stream.state !== StreamState.Established) return false;
  const window = stream['recvWindow'];
  const used = window - stream['recvWindowCapacity'];
  return used < window / 2;
}

export function installYamuxWindowBatching(): void {
  const proto: Patched = YamuxStream.prototype;
  if (proto[INSTALLED] === true) return;
  const sendWindowUpdate = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function batchedWindowUpdate(this: YamuxStream): void {
    if (windowUpdateCanWait(this)) return;
    sendWindowUpdate.call(this);
  };
  proto[INSTALLED] = true;
}

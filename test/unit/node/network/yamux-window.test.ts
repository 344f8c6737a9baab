import { describe, expect, it } from 'vitest';
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import type { Logger } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { installYamuxWindowBatching, windowUpdateCanWait } from '../../../../node/network/yamux-window.js';

// Frame types and flags of the Yamux spec (the library does not export its enums).
const DATA = 0;
const WINDOW_UPDATE = 1;
const FLAG_ACK = 2;
const WINDOW = 256 * 1024; // the spec's initial stream window

interface SentFrame {
  type: number;
  flag: number;
  length: number;
  data?: Uint8ArrayList;
}

const quiet: Logger = Object.assign(() => {}, {
  enabled: false,
  error: () => {},
  trace: () => {},
  newScope: () => quiet,
});

function stream(state: StreamState, sent: SentFrame[]): YamuxStream {
  return new YamuxStream({
    id: '1',
    streamId: 1,
    state,
    direction: 'inbound',
    log: quiet,
    getRTT: () => -1,
    sendFrame: (header, data) => {
      sent.push({ type: header.type, flag: header.flag, length: header.length, data });
      return true;
    },
  });
}

function dataFrame(bytes: number) {
  return { header: { type: DATA, flag: 0, streamID: 1, length: bytes }, data: new Uint8ArrayList(new Uint8Array(bytes)) };
}

const updates = (sent: SentFrame[]) => sent.filter((f) => f.type === WINDOW_UPDATE);

describe('Yamux window updates, batched', () => {
  installYamuxWindowBatching();
  installYamuxWindowBatching(); // idempotent: a second call must not wrap the method twice

  it('grants credit back once half the window is used, not after every frame', () => {
    const sent: SentFrame[] = [];
    const s = stream(StreamState.Established, sent);
    for (let i = 0; i < 127; i++) s.handleData(dataFrame(1024));
    expect(updates(sent)).toEqual([]);
    expect(windowUpdateCanWait(s)).toBe(true);
    s.handleData(dataFrame(1024)); // 128 KiB used: half the window
    expect(updates(sent).map((f) => f.length)).toEqual([128 * 1024]);
    // 1 MiB in 1 KiB frames: 8 updates, where the library alone sends 1,024.
    for (let i = 0; i < 896; i++) s.handleData(dataFrame(1024));
    expect(updates(sent)).toHaveLength(8);
    expect(updates(sent).reduce((n, f) => n + f.length, 0)).toBe(1024 * 1024);
  });

  it('answers a new stream at once: the ACK flag is not held back', () => {
    const sent: SentFrame[] = [];
    const s = stream(StreamState.SYNReceived, sent);
    s.handleData(dataFrame(10));
    expect(updates(sent)).toEqual([{ type: WINDOW_UPDATE, flag: FLAG_ACK, length: 10, data: undefined }]);
    expect(s.state).toBe(StreamState.Established);
    s.handleData(dataFrame(10));
    expect(updates(sent)).toHaveLength(1);
  });

  it('a frame of half the window or more is granted back at once', () => {
    const sent: SentFrame[] = [];
    const s = stream(StreamState.Established, sent);
    s.handleData(dataFrame(WINDOW / 2));
    expect(updates(sent).map((f) => f.length)).toEqual([WINDOW / 2]);
  });

  it('a paused stream grants nothing, and grants what was used when it resumes', () => {
    const sent: SentFrame[] = [];
    const s = stream(StreamState.Established, sent);
    s.sendPause();
    for (let i = 0; i < 256; i++) s.handleData(dataFrame(1024)); // the whole window
    expect(updates(sent)).toEqual([]);
    expect(() => s.handleData(dataFrame(1))).toThrow(/window/i); // the peer may send no more
    s.sendResume();
    expect(updates(sent).map((f) => f.length)).toEqual([WINDOW]);
  });

  it('two streams wired to each other move 4 MiB in small messages without stalling', async () => {
    const toReceiver: SentFrame[] = [];
    const toSender: SentFrame[] = [];
    const sender = stream(StreamState.Established, toReceiver);
    const receiver = stream(StreamState.Established, toSender);
    let received = 0;
    let granted = 0;
    receiver.addEventListener('message', (e) => {
      received += e.data.byteLength;
    });
    const deliver = () => {
      // Frames cross in order, as they would on one connection.
      while (toReceiver.length > 0 || toSender.length > 0) {
        for (const f of toReceiver.splice(0)) receiver.handleData({ header: { type: f.type, flag: f.flag, streamID: 1, length: f.length }, data: f.data });
        granted += updates(toSender).length;
        for (const f of toSender.splice(0)) sender.handleWindowUpdate({ header: { type: f.type, flag: f.flag, streamID: 1, length: f.length } });
      }
    };
    const total = 4 * 1024 * 1024;
    const message = new Uint8Array(700);
    let sentBytes = 0;
    while (sentBytes < total) {
      if (!sender.send(message)) {
        deliver();
        await new Promise<void>((resolve) => sender.addEventListener('drain', () => resolve(), { once: true }));
      }
      sentBytes += message.byteLength;
      deliver();
    }
    deliver();
    expect(received).toBe(sentBytes);
    // About one update per 128 KiB instead of one per message.
    expect(granted).toBeGreaterThan(0);
    expect(granted).toBeLessThanOrEqual(Math.ceil(sentBytes / (WINDOW / 2)) + 1);
  });
});

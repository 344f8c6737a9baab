import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot, reportDataFor } from '../../../../attestation/index.js';
import { generateEd25519KeyPair, genesisHash, type Genesis } from '../../../../consensus/index.js';
import { AdmissionService, admissionFreshness, parseAnswer, type AdmissionServiceOptions } from '../../../../node/admission/index.js';
import { systemClock, type Clock } from '../../../../node/chain/clock.js';
import { buildGenesis } from '../../../../node/genesis/build-genesis.js';
import { silentLogger } from '../../../../node/log/logger.js';
import { CHAIN, connectAll, startCluster, waitFor, type Cluster } from './helpers.js';

const root = generateVirtualRoot();
const ALLOWED = '5a'.repeat(48);

let cluster: Cluster;
let genesis: Genesis;
/** Each node's enclave vote key, as the genesis pins it. */
const voteKeys = new Map<string, string>();

/** What a node's enclave would answer: evidence binding its key to node, chain, its genesis and the challenge. */
function enclaveOf(nodeId: string, opts: { measurement?: string; claimAs?: string; ignoreChallenge?: boolean; genesisHash?: string } = {}) {
  const publicKeys = { vote: voteKeys.get(nodeId)! };
  return async (challenge: string) => {
    const reportData = reportDataFor({
      publicKeys,
      chainId: CHAIN,
      nodeId: opts.claimAs ?? nodeId,
      freshness: admissionFreshness(opts.genesisHash ?? genesisHash(genesis), opts.ignoreChallenge ? 'an-old-challenge' : challenge),
    });
    const evidence = createVirtualEvidence({
      rootPrivateKeyPem: root.privateKeyPem,
      measurement: Buffer.from(opts.measurement ?? ALLOWED, 'hex'),
      reportData,
    });
    return { publicKeys, evidence: Buffer.from(evidence).toString('base64') };
  };
}

function service(
  i: number,
  evidenceFor: ReturnType<typeof enclaveOf>,
  selfNodeId = cluster.ids[i]!,
  options: Partial<AdmissionServiceOptions> = {},
): AdmissionService {
  const s = new AdmissionService({ transport: cluster.nodes[i]!, genesis, genesisHash: genesisHash(genesis), selfNodeId, evidenceFor, clock: systemClock, log: silentLogger, ...options });
  s.start();
  return s;
}

/** A challenger that follows connection events the test emits, and records every change of admission it reports. */
function follower(options: Partial<AdmissionServiceOptions> = {}) {
  const changes: boolean[] = [];
  const a = service(0, enclaveOf(cluster.ids[0]!), cluster.ids[0]!, { onChange: (_peer, admitted) => void changes.push(admitted), ...options });
  const events = new EventEmitter();
  a.follow(events);
  return { a, events, changes, connect: () => events.emit('peer:connect', { id: cluster.ids[1] }), disconnect: () => events.emit('peer:disconnect', { id: cluster.ids[1] }) };
}

const challenge = (c: string): Uint8Array => new TextEncoder().encode(JSON.stringify({ challenge: c, genesis: genesisHash(genesis) }));

/** Counts node 0's admission exchanges: answered with a claim, declined with a typed error, unanswered. Call restore() after. */
function countExchanges() {
  const node = cluster.nodes[0]!;
  const exchange = node.exchangeAdmission.bind(node);
  const counts = { answered: 0, declined: 0, unanswered: 0 };
  node.exchangeAdmission = async (...args) => {
    try {
      const reply = await exchange(...args);
      if ('error' in parseAnswer(reply)) counts.declined++;
      else counts.answered++;
      return reply;
    } catch (err) {
      counts.unanswered++;
      throw err;
    }
  };
  return { counts, restore: () => void (node.exchangeAdmission = exchange) };
}

beforeAll(async () => {
  cluster = await startCluster(2);
  await connectAll(cluster.nodes);
  genesis = buildGenesis({
    chainId: CHAIN,
    time: 0,
    members: [{ id: 'm', publicKey: generateEd25519KeyPair().publicKey }],
    nodes: cluster.ids.map((nodeId) => {
      voteKeys.set(nodeId, generateEd25519KeyPair().publicKey);
      return { nodeId, voteKey: voteKeys.get(nodeId)! };
    }),
    measurements: { virtual: [ALLOWED] },
    virtualRoots: [root.publicKeyPem],
    contracts: [],
  });
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('admission handshake over libp2p', () => {
  it('admits a peer when it connects, challenges it again every refresh period, and stops when it leaves', async () => {
    let challenges = 0;
    const answer = enclaveOf(cluster.ids[1]!);
    const b = service(1, async (freshness) => {
      challenges++;
      return answer(freshness);
    });
    const a = new AdmissionService({
      transport: cluster.nodes[0]!, genesis, genesisHash: genesisHash(genesis), selfNodeId: cluster.ids[0]!, evidenceFor: enclaveOf(cluster.ids[0]!),
      clock: systemClock, log: silentLogger, refreshMs: 50,
    });
    a.start();
    const events = new EventEmitter();
    a.follow(events);
    events.emit('peer:connect', { id: cluster.ids[1] });
    await waitFor(() => a.isAdmitted(cluster.ids[1]!), 5000, 'admission on connect');
    expect(a.nodes()).toEqual([expect.objectContaining({ nodeId: cluster.ids[1], admitted: true, connected: true })]);
    // Each refresh is a new challenge, answered with new evidence.
    await waitFor(() => challenges >= 3, 5000, 'two refreshes');
    events.emit('peer:disconnect', { id: cluster.ids[1] });
    const after = challenges;
    expect(a.nodes()[0]!.connected).toBe(false);
    a.stop();
    b.stop();
    expect(challenges - after).toBeLessThanOrEqual(1); // at most one exchange already in flight
  });

  it('each node admits the other after verifying its evidence against the genesis policy', async () => {
    const a = service(0, enclaveOf(cluster.ids[0]!));
    const b = service(1, enclaveOf(cluster.ids[1]!));
    const ab = await a.admit(cluster.ids[1]!);
    const ba = await b.admit(cluster.ids[0]!);
    expect(ab).toMatchObject({ nodeId: cluster.ids[1], admitted: true, platform: 'virtual', measurement: ALLOWED });
    expect(ba).toMatchObject({ nodeId: cluster.ids[0], admitted: true });
    expect(a.nodes()).toEqual([{ ...ab, connected: false }]);
    expect(a.isAdmitted(cluster.ids[1]!)).toBe(true);
    expect(a.isVoteKeyAdmitted(voteKeys.get(cluster.ids[1]!)!)).toBe(true);
    expect(a.isVoteKeyAdmitted(voteKeys.get(cluster.ids[0]!)!)).toBe(false);
    a.stop();
    b.stop();
  });

  it('refuses a peer on another genesis with GENESIS_MISMATCH both ways, naming both hashes, and its evidence never answers ours', async () => {
    // The same validators and policy, another genesis time: another genesis (two members who ran `cloister genesis` apart).
    const theirs = { ...genesis, time: genesis.time + 1 };
    const theirHash = genesisHash(theirs);
    const a = service(0, enclaveOf(cluster.ids[0]!));
    const b = service(1, enclaveOf(cluster.ids[1]!, { genesisHash: theirHash }), cluster.ids[1]!, { genesis: theirs, genesisHash: theirHash });
    const ab = await a.admit(cluster.ids[1]!);
    const ba = await b.admit(cluster.ids[0]!);
    for (const [decision, peer] of [[ab, cluster.ids[1]], [ba, cluster.ids[0]]] as const) {
      expect(decision).toMatchObject({ nodeId: peer, admitted: false, reason: { code: 'GENESIS_MISMATCH' } });
      expect(decision.reason!.message).toContain(genesisHash(genesis));
      expect(decision.reason!.message).toContain(theirHash);
    }
    expect(a.isAdmitted(cluster.ids[1]!)).toBe(false);
    a.stop();
    b.stop();
    // A host that answers our challenge anyway, with its enclave's evidence (bound to its own genesis): refused at the binding.
    const answeringAnyway = service(1, enclaveOf(cluster.ids[1]!, { genesisHash: theirHash }));
    const checker = service(0, enclaveOf(cluster.ids[0]!));
    expect((await checker.admit(cluster.ids[1]!)).reason?.code).toBe('REPORT_DATA_MISMATCH');
    checker.stop();
    answeringAnyway.stop();
  });

  it('refuses an enclave whose measurement is not allowed, saying which', async () => {
    const a = service(0, enclaveOf(cluster.ids[0]!));
    const other = '66'.repeat(48);
    const b = service(1, enclaveOf(cluster.ids[1]!, { measurement: other }));
    const decision = await a.admit(cluster.ids[1]!);
    expect(decision.admitted).toBe(false);
    expect(decision.reason?.code).toBe('MEASUREMENT_NOT_ALLOWED');
    expect(decision.reason?.message).toContain(other);
    expect(a.nodes()[0]).toEqual({ ...decision, connected: false });
    a.stop();
    b.stop();
  });

  it("refuses evidence bound to another node's identity and evidence replayed for an old challenge", async () => {
    const a = service(0, enclaveOf(cluster.ids[0]!));
    const impostor = service(1, enclaveOf(cluster.ids[1]!, { claimAs: cluster.ids[0]! }));
    expect((await a.admit(cluster.ids[1]!)).reason?.code).toBe('REPORT_DATA_MISMATCH');
    impostor.stop();
    const replayer = service(1, enclaveOf(cluster.ids[1]!, { ignoreChallenge: true }));
    expect((await a.admit(cluster.ids[1]!)).reason?.code).toBe('REPORT_DATA_MISMATCH');
    replayer.stop();
    const liar = service(1, enclaveOf(cluster.ids[1]!), cluster.ids[0]!);
    expect((await a.admit(cluster.ids[1]!)).reason?.code).toBe('NODE_MISMATCH');
    liar.stop();
    a.stop();
  });

  it('answers a malformed challenge with an error and refuses a peer that does not answer properly', async () => {
    const b = service(1, enclaveOf(cluster.ids[1]!));
    const reply = await cluster.nodes[0]!.exchangeAdmission(cluster.ids[1]!, new TextEncoder().encode('not json'));
    expect(JSON.parse(new TextDecoder().decode(reply))).toHaveProperty('error');
    b.stop();
    const a = service(0, enclaveOf(cluster.ids[0]!));
    const decision = await a.admit(cluster.ids[1]!); // b no longer answers admission
    expect(decision.admitted).toBe(false);
    expect(decision.reason?.code).toBeTruthy();
    a.stop();
  });
});

describe('admission lasts while the peer is connected and answers', () => {
  it('a peer that stops answering re-challenges stays admitted for the grace period, then is not (UNREACHABLE); answering again re-admits it', async () => {
    // A clock the test moves: how long an admission lasts is exact; the re-challenges themselves run on timers.
    let now = Date.parse('2026-12-01T00:00:00Z');
    const clock: Clock = { now: () => now };
    const answering = service(1, enclaveOf(cluster.ids[1]!));
    const { a, changes, connect } = follower({ clock, refreshMs: 100, unansweredGraceMs: 5000, answerTimeoutMs: 500 });
    const b = cluster.ids[1]!;
    const { counts, restore } = countExchanges();
    try {
      connect();
      await waitFor(() => a.isAdmitted(b), 5000, 'admission on connect');
      expect(changes).toEqual([true]);
      answering.stop(); // B's host stops answering; its connection stays
      await waitFor(() => counts.unanswered >= 2, 5000, 'two unanswered re-challenges');
      // Still within refreshMs + grace of the last verified answer: admitted, its votes count.
      now += 100 + 5000;
      expect(a.isAdmitted(b)).toBe(true);
      expect(a.isVoteKeyAdmitted(voteKeys.get(b)!)).toBe(true);
      now += 1;
      expect(a.isAdmitted(b)).toBe(false);
      // Its admission lapsed (no gossip, no sync), but its enclave was attested recently: votes it signed still count
      // (a proof of lock relayed by others must), until 4 refresh periods after its admission ran out.
      expect(a.isVoteKeyAdmitted(voteKeys.get(b)!)).toBe(true);
      now += 4 * 100;
      expect(a.isVoteKeyAdmitted(voteKeys.get(b)!)).toBe(false);
      expect(a.nodes()[0]).toMatchObject({ nodeId: b, admitted: false, connected: true, reason: { code: 'UNREACHABLE' } });
      // The next failed re-challenge records it and reports the change.
      await waitFor(() => changes.length === 2, 5000, 'the lapse reported');
      expect(changes).toEqual([true, false]);
      const back = service(1, enclaveOf(cluster.ids[1]!));
      try {
        await waitFor(() => a.isAdmitted(b), 5000, 'admitted again once it answers');
        expect(changes).toEqual([true, false, true]);
      } finally {
        back.stop();
      }
    } finally {
      restore();
      a.stop();
      answering.stop();
    }
  });

  it('attestations outlive a restart: a peer attested before counts for its votes while it is down, a refused one does not', async () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    const clock: Clock = { now: () => now };
    const recorded = new Map<string, number>();
    const attestations = { initial: recorded, record: (id: string, until: number) => void (until > 0 ? recorded.set(id, until) : recorded.delete(id)) };
    const answering = service(1, enclaveOf(cluster.ids[1]!));
    const first = follower({ clock, attestations });
    const b = cluster.ids[1]!;
    try {
      first.connect();
      await waitFor(() => first.a.isAdmitted(b), 5000, 'admission on connect');
      expect(recorded.get(b)).toBeGreaterThan(now);
    } finally {
      first.a.stop();
      answering.stop();
    }
    // This node restarts; the peer is down. What was recorded says its enclave was attested: its votes count.
    const restarted = follower({ clock, attestations: { initial: new Map(recorded), record: attestations.record } });
    try {
      expect(restarted.a.isAdmitted(b)).toBe(false);
      expect(restarted.a.isVoteKeyAdmitted(voteKeys.get(b)!)).toBe(true);
    } finally {
      restarted.a.stop();
    }
    // A node that never recorded it does not count its votes.
    const fresh = follower({ clock, attestations: { initial: new Map(), record: () => {} } });
    expect(fresh.a.isVoteKeyAdmitted(voteKeys.get(b)!)).toBe(false);
    fresh.a.stop();
  });

  it('a disconnect ends the admission at once (DISCONNECTED); a reconnect is challenged at once; an answer that arrives after the disconnect does not count', async () => {
    let slow = false;
    const answer = enclaveOf(cluster.ids[1]!);
    const b = service(1, async (freshness) => {
      if (slow) await new Promise((r) => setTimeout(r, 300));
      return answer(freshness);
    });
    const { a, changes, connect, disconnect } = follower();
    const id = cluster.ids[1]!;
    try {
      connect();
      await waitFor(() => a.isAdmitted(id), 5000, 'admission on connect');
      disconnect();
      expect(a.isAdmitted(id)).toBe(false);
      expect(a.nodes()).toEqual([{ nodeId: id, admitted: false, connected: false, reason: { code: 'DISCONNECTED', message: expect.any(String) } }]);
      expect(changes).toEqual([true, false]);
      connect();
      // Connected, not answered yet: no longer DISCONNECTED.
      expect(a.nodes()[0]).toMatchObject({ admitted: false, connected: true, reason: { code: 'UNREACHABLE' } });
      await waitFor(() => a.isAdmitted(id), 5000, 'admission on reconnect');
      expect(a.nodes()[0]).toMatchObject({ admitted: true, connected: true });
      // Gone again while the answer is on its way: the late answer does not re-admit it.
      slow = true;
      disconnect();
      connect();
      disconnect();
      await new Promise((r) => setTimeout(r, 600));
      expect(a.isAdmitted(id)).toBe(false);
      expect(a.nodes()[0]).toMatchObject({ admitted: false, connected: false, reason: { code: 'DISCONNECTED' } });
      expect(changes).toEqual([true, false, true, false]);
    } finally {
      a.stop();
      b.stop();
    }
  });
});

describe('answering challenges is rate-limited', () => {
  it('a peer that hammers the admission protocol gets RATE_LIMITED (typed, with a retry time) once its burst is spent', async () => {
    const b = service(1, enclaveOf(cluster.ids[1]!));
    try {
      const answers = [];
      for (let k = 0; k < 8; k++) answers.push(parseAnswer(await cluster.nodes[0]!.exchangeAdmission(cluster.ids[1]!, challenge(`c${k}`))));
      const claims = answers.filter((x) => 'claim' in x);
      const refusals = answers.flatMap((x) => ('error' in x ? [x.error] : []));
      expect(claims).toHaveLength(5);
      expect(refusals).toHaveLength(3);
      for (const e of refusals) {
        expect(e.code).toBe('RATE_LIMITED');
        // 3 answers per 60 s refresh period: the next one in about 20 s.
        expect(e.retryAfterMs).toBeGreaterThan(10_000);
        expect(e.retryAfterMs).toBeLessThanOrEqual(20_000);
      }
      // A's admission service, challenged out of its budget, does not take the refusal for a bad claim.
      const a = service(0, enclaveOf(cluster.ids[0]!));
      const decision = await a.admit(cluster.ids[1]!);
      a.stop();
      expect(decision).toMatchObject({ admitted: false, reason: { code: 'UNREACHABLE' } });
      expect(decision.reason?.message).toContain('RATE_LIMITED');
    } finally {
      b.stop();
    }
  });

  it("an honest peer's refreshes and reconnects are never limited", async () => {
    // Both sides use the same refresh period, as every node does (60 s by default; 100 ms here).
    const b = service(1, enclaveOf(cluster.ids[1]!), cluster.ids[1]!, { refreshMs: 100 });
    const { a, connect, disconnect } = follower({ refreshMs: 100 });
    const { counts, restore } = countExchanges();
    try {
      connect();
      await waitFor(() => a.isAdmitted(cluster.ids[1]!), 5000, 'admitted');
      for (let k = 0; k < 3; k++) {
        disconnect();
        connect();
        await waitFor(() => a.isAdmitted(cluster.ids[1]!), 5000, 'admitted after a reconnect');
      }
      const start = counts.answered;
      await waitFor(() => counts.answered - start >= 15, 10_000, '15 refreshes');
      expect(counts).toMatchObject({ declined: 0, unanswered: 0 });
      expect(a.isAdmitted(cluster.ids[1]!)).toBe(true);
    } finally {
      restore();
      a.stop();
      b.stop();
    }
  });

  it('a peer that reconnects in a loop is not verified more often than the budget allows', async () => {
    const b = service(1, enclaveOf(cluster.ids[1]!), cluster.ids[1]!, { answerBurst: 100 });
    const { a, connect, disconnect } = follower();
    const outcomes: string[] = [];
    try {
      for (let k = 0; k < 7; k++) {
        connect();
        await waitFor(() => a.nodes()[0]!.admitted || /too often/.test(a.nodes()[0]!.reason?.message ?? ''), 5000, `an outcome for connect ${k}`);
        outcomes.push(a.nodes()[0]!.admitted ? 'admitted' : a.nodes()[0]!.reason!.message);
        disconnect();
      }
      expect(outcomes.slice(0, 5)).toEqual(Array(5).fill('admitted'));
      for (const o of outcomes.slice(5)) expect(o).toMatch(/too often/);
    } finally {
      a.stop();
      b.stop();
    }
  });

  it('bounds admission work overall: beyond the running and queued answers, BUSY', async () => {
    let running = 0;
    let most = 0;
    const answer = enclaveOf(cluster.ids[1]!);
    const b = service(1, async (freshness) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 200));
      running--;
      return answer(freshness);
    }, cluster.ids[1]!, { maxConcurrentAnswers: 1, maxQueuedAnswers: 1 });
    try {
      const answers = await Promise.all([0, 1, 2].map((k) => cluster.nodes[0]!.exchangeAdmission(cluster.ids[1]!, challenge(`busy${k}`)).then(parseAnswer)));
      const codes = answers.map((x) => ('error' in x ? x.error.code : 'claim')).sort();
      expect(codes).toEqual(['BUSY', 'claim', 'claim']);
      expect(most).toBe(1);
    } finally {
      b.stop();
    }
  });
});

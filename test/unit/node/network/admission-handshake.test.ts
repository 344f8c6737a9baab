import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot, reportDataFor } from '../../../../attestation/index.js';
import { generateEd25519KeyPair, type Genesis } from '../../../../consensus/index.js';
import { AdmissionService } from '../../../../node/admission/index.js';
import { systemClock } from '../../../../node/chain/clock.js';
import { buildGenesis } from '../../../../node/genesis/build-genesis.js';
import { silentLogger } from '../../../../node/log/logger.js';
import { CHAIN, connectAll, startCluster, waitFor, type Cluster } from './helpers.js';

const root = generateVirtualRoot();
const ALLOWED = '5a'.repeat(48);

let cluster: Cluster;
let genesis: Genesis;
/** Each node's enclave vote key, as the genesis pins it. */
const voteKeys = new Map<string, string>();

/** What a node's enclave would answer: evidence binding its key to node, chain and challenge. */
function enclaveOf(nodeId: string, opts: { measurement?: string; claimAs?: string; ignoreChallenge?: boolean } = {}) {
  const publicKeys = { vote: voteKeys.get(nodeId)! };
  return async (freshness: string) => {
    const reportData = reportDataFor({
      publicKeys,
      chainId: CHAIN,
      nodeId: opts.claimAs ?? nodeId,
      freshness: opts.ignoreChallenge ? 'an-old-challenge' : freshness,
    });
    const evidence = createVirtualEvidence({
      rootPrivateKeyPem: root.privateKeyPem,
      measurement: Buffer.from(opts.measurement ?? ALLOWED, 'hex'),
      reportData,
    });
    return { publicKeys, evidence: Buffer.from(evidence).toString('base64') };
  };
}

function service(i: number, evidenceFor: ReturnType<typeof enclaveOf>, selfNodeId = cluster.ids[i]!): AdmissionService {
  const s = new AdmissionService({ transport: cluster.nodes[i]!, genesis, selfNodeId, evidenceFor, clock: systemClock, log: silentLogger });
  s.start();
  return s;
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
      transport: cluster.nodes[0]!, genesis, selfNodeId: cluster.ids[0]!, evidenceFor: enclaveOf(cluster.ids[0]!),
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

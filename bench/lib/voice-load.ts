/**
 * Bench child: load clients of the voice bench, node-datachannel peers. Argument:
 * LoadConfig; its role says which:
 *
 * - speakers: one Janus session per grant, a VideoRoom publisher (`id` = the grant's
 *   feed id, its token) that publishes one Opus track (`configure` with the offer) and
 *   sends 50 packets a second on it. Ready (SpeakersReady) once every one is up
 *   (webrtcup), so that subscribers can subscribe to it.
 * - listeners: `addListeners` joins listeners, each with a session of its own: a
 *   publisher handle that only joins (its private_id: the room has require_pvtid), and a
 *   subscriber handle that joins with the first feed, answers Janus' offer, `start`s,
 *   then subscribes to the other feeds with one `update` (Janus offers again; answered
 *   the same way). Every track's RTP packets are counted; each request's time to the
 *   first packet of the tracks it added is returned. Baseline: `answerOffer` answers the
 *   fan-out peer's offers instead, no Janus.
 * - fanout (baseline): `offer` makes one peer per listener carrying every speaker's
 *   stream (as Janus' subscriber offers do), and sends each speaker's packets on all of
 *   them, so the listeners receive what they would from Janus, straight from a peer.
 *
 * Calls: startWindow, stopWindow → LoadWindow (every role).
 */
import { JanusSocket, type JanusHandle, type PluginEvent } from "./voice-janus.ts";
import { LoopDelayWindow } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";
import { withConcurrency, withTimeout } from "./tasks.ts";
import { ReceivingPeer, SendingPeer, Stream, Ticker, initRtcLogging } from "./voice-rtc.ts";
import { candidateAddresses, type AddListeners, type LoadConfig, type LoadWindow, type SpeakersReady, type SubscribeTimes } from "./voice-protocol.ts";

const config = JSON.parse(process.argv[2] ?? "null") as LoadConfig;
/** How long a subscription's tracks may take to their first packet before they count as silent. */
const FIRST_PACKET_TIMEOUT_MS = 10_000;
const WEBRTCUP_TIMEOUT_MS = 20_000;

initRtcLogging();
const receivers: ReceivingPeer[] = [];
const senders: SendingPeer[] = [];
let ticker: Ticker | undefined;
/** The process' one socket to Janus (opened by the first client that needs it). */
let janus: Promise<JanusSocket> | undefined;
const loopDelay = new LoopDelayWindow();
let openWindow: { startedAt: number; received: number; sent: number } | undefined;

function received(): number {
  let sum = 0;
  for (const receiver of receivers) sum += receiver.received();
  return sum;
}

function tracks(): number {
  let sum = 0;
  for (const receiver of receivers) sum += receiver.tracks.size;
  return sum;
}

const windowMethods = {
  startWindow: () => {
    loopDelay.start();
    openWindow = { startedAt: performance.now(), received: received(), sent: ticker?.sent ?? 0 };
  },
  stopWindow: (): LoadWindow => {
    if (!openWindow) throw new Error("no window open");
    const result: LoadWindow = {
      windowMs: performance.now() - openWindow.startedAt,
      tracks: tracks(),
      received: received() - openWindow.received,
      sent: (ticker?.sent ?? 0) - openWindow.sent,
      eventLoopDelayP99Ms: loopDelay.stopP99Ms(),
    };
    openWindow = undefined;
    return result;
  },
};

/** The next offer Janus pushes to `handle` without a transaction (a postponed `updated`). */
function pushedOffer(handle: JanusHandle): Promise<PluginEvent> {
  return new Promise((resolve) => handle.onEvent((reply) => {
    if (reply.jsep?.type === "offer") resolve({ data: reply.plugindata?.data ?? {}, jsep: reply.jsep });
  }));
}

/** The mids of the subscriber streams Janus lists that carry a feed. */
function feedMids(event: PluginEvent): string[] {
  return ((event.data.streams ?? []) as Array<{ mid: string; feed_id?: string; active?: boolean }>)
    .filter((stream) => stream.feed_id !== undefined && stream.active !== false).map((stream) => stream.mid);
}

async function startSpeakers(): Promise<SpeakersReady> {
  const grants = config.grants!;
  const socket = await (janus = JanusSocket.connect(grants[0]!.url));
  const streams = grants.map(() => new Stream(1 + Math.floor(Math.random() * 0xfffffffe)));
  ticker = new Ticker(streams);
  const janusCandidates = new Set<string>();
  await withConcurrency(grants, 10, async (grant, i) => {
    const session = await socket.createSession(grant.token);
    const handle = await session.attach();
    const up = new Promise<void>((resolve, reject) => handle.onEvent((reply) => {
      if (reply.janus === "webrtcup") resolve();
      if (reply.janus === "hangup") reject(new Error(`speaker ${i + 1}: Janus hung up (${String(reply.reason)})`));
    }));
    up.catch(() => {});
    await handle.message({ request: "join", ptype: "publisher", room: grant.room, id: grant.feedId, display: `speaker ${i + 1}`, token: grant.token });
    const sender = new SendingPeer(`${config.label}-${i + 1}`, config.mediaAddress, [streams[i]!]);
    senders.push(sender);
    const configured = await handle.message({ request: "configure", audio: true }, { type: "offer", sdp: await sender.offer() });
    if (!configured.jsep) throw new Error(`Janus answered speaker ${i + 1}'s configure without an SDP: ${JSON.stringify(configured.data)}`);
    for (const address of candidateAddresses(configured.jsep.sdp)) janusCandidates.add(address);
    await Promise.all([sender.answered(configured.jsep.sdp), withTimeout(up, WEBRTCUP_TIMEOUT_MS, `speaker ${i + 1}'s webrtcup from Janus`)]);
  });
  return { feeds: grants.map((grant) => grant.feedId), janusCandidates: [...janusCandidates] };
}

/** One listener: joins, subscribes to feeds[0] with the join and to the rest with one update; its times into `times`. */
async function addListener(grant: AddListeners["grants"][number], feeds: string[], times: SubscribeTimes): Promise<void> {
  const session = await (await (janus ??= JanusSocket.connect(grant.url))).createSession(grant.token);
  const publisher = await session.attach();
  const joined = await publisher.message({ request: "join", ptype: "publisher", room: grant.room, id: grant.feedId, display: "listener", token: grant.token });
  const subscriber = await session.attach();
  const receiver = new ReceivingPeer(config.label, config.mediaAddress);
  receivers.push(receiver);

  const subscribe = async (kind: "join" | "update", request: Record<string, unknown>, known: Set<string>) => {
    const pushed = pushedOffer(subscriber);
    const sentAt = performance.now();
    let event = await subscriber.message(request);
    if (!event.jsep) event = await pushed; // "updating": the offer comes once the previous answer is in
    const answer = await receiver.answer(event.jsep!.sdp);
    await subscriber.message({ request: "start" }, { type: "answer", sdp: answer });
    const added = feedMids(event).filter((mid) => !known.has(mid));
    await receiver.firstPackets(added, FIRST_PACKET_TIMEOUT_MS);
    for (const mid of added) {
      known.add(mid);
      const firstAt = receiver.tracks.get(mid)?.firstAtMs;
      if (firstAt === undefined) times.silent++;
      else times[kind].push(firstAt - sentAt);
    }
  };
  const known = new Set<string>();
  await subscribe("join", { request: "join", ptype: "subscriber", room: grant.room, private_id: joined.data.private_id, streams: [{ feed: feeds[0] }] }, known);
  if (feeds.length > 1) await subscribe("update", { request: "update", subscribe: feeds.slice(1).map((feed) => ({ feed })) }, known);
}

const methods = {
  ...windowMethods,
  /** Listeners: joins these listeners to Janus' room; resolves once each has its tracks (or gave up on the silent ones). */
  addListeners: async ({ grants, feeds, concurrency }: AddListeners): Promise<SubscribeTimes> => {
    const times: SubscribeTimes = { join: [], update: [], silent: 0 };
    await withConcurrency(grants, concurrency, (grant) => addListener(grant, feeds, times));
    return times;
  },
  /** Listeners, baseline: answers the fan-out peer's offer for listener `id`. */
  answerOffer: async ({ sdp }: { id: number; sdp: string }): Promise<string> => {
    const receiver = new ReceivingPeer(config.label, config.mediaAddress);
    receivers.push(receiver);
    return await receiver.answer(sdp);
  },
  /** Listeners, baseline: resolves once every track has had a packet (or after the wait); the silent tracks. */
  baselineFirstPackets: async (): Promise<number> => {
    let silent = 0;
    await Promise.all(receivers.map(async (receiver) => {
      await receiver.firstPackets([...receiver.tracks.keys()], FIRST_PACKET_TIMEOUT_MS);
      for (const track of receiver.tracks.values()) if (track.firstAtMs === undefined) silent++;
    }));
    return silent;
  },
  /** Fan-out: a new peer for one listener, carrying every speaker's stream; its offer. */
  offer: async (): Promise<{ id: number; sdp: string }> => {
    const sender = new SendingPeer(`${config.label}-${senders.length + 1}`, config.mediaAddress, fanoutStreams);
    senders.push(sender);
    return { id: senders.length - 1, sdp: await sender.offer() };
  },
  /** Fan-out: the listener's answer to peer `id`; resolves once its tracks are open. */
  answered: async ({ id, sdp }: { id: number; sdp: string }): Promise<void> => {
    await senders[id]!.answered(sdp);
  },
};

const fanoutStreams = config.role === "fanout" ? Array.from({ length: config.speakers! }, () => new Stream(1 + Math.floor(Math.random() * 0xfffffffe))) : [];
if (config.role === "fanout") ticker = new Ticker(fanoutStreams);
const ready = config.role === "speakers" ? await startSpeakers() : null;
serveParent(methods, ready);

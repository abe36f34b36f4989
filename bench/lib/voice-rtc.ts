/**
 * The voice bench's WebRTC peers, on node-datachannel (libdatachannel): audio only,
 * Opus 48000/2, every peer bound to the bench's media address, ICE candidates inside
 * the SDP (gathering on one address is over in a few ms, so no trickle).
 *
 * - SendingPeer: offers `streams` sendonly audio tracks (mids "0", "1", ...), each with
 *   the SSRC of the stream it carries; a Janus publisher has one, the baseline's
 *   fan-out peer one per speaker.
 * - Ticker: sends every stream's packets at 50 a second, drift-free (each tick sends
 *   the frames due since the start, so a late timer catches up rather than slowing the
 *   rate), on every track that carries that stream, the streams spread over the frame.
 * - ReceivingPeer: answers offers (the first and every renegotiation), and counts the
 *   RTP packets of each track; the first packet of each track is timestamped.
 *
 * Every Track object is held for as long as its peer: node-datachannel stops calling a
 * Track's onMessage once its JS wrapper is garbage-collected, and a listener whose
 * tracks were referenced only by their callbacks went silent at the next collection.
 */
import nodeDataChannel, { type PeerConnection, type Track } from "node-datachannel";
import { FRAME_MS, OPUS_FMTP, OPUS_PAYLOAD_TYPE, isRtcp, offerForPassiveAnswer, opusPayload, rtpPacket, stampRtp } from "./voice-protocol.ts";
import { withTimeout } from "./tasks.ts";

const CONNECT_TIMEOUT_MS = 20_000;
let peers = 0;

export function initRtcLogging(): void {
  nodeDataChannel.initLogger("Error", (level, message) => process.stderr.write(`[rtc ${level}] ${message}\n`));
}

function newPeer(label: string, mediaAddress: string): PeerConnection {
  return new nodeDataChannel.PeerConnection(`${label}-${++peers}`, { iceServers: [], bindAddress: mediaAddress });
}

/** Resolves once `peer` has gathered its candidates. */
function gathered(peer: PeerConnection): Promise<void> {
  if (peer.gatheringState() === "complete") return Promise.resolve();
  return new Promise((resolve) => peer.onGatheringStateChange((state) => { if (state === "complete") resolve(); }));
}

/** One stream of Opus packets: its SSRC, the packet rewritten at each frame, the tracks it goes out on. */
export class Stream {
  readonly packet: Buffer;
  readonly tracks: Track[] = [];
  constructor(readonly ssrc: number) {
    this.packet = rtpPacket(ssrc, opusPayload());
  }
}

export class SendingPeer {
  readonly peer: PeerConnection;
  readonly tracks: Track[] = [];

  constructor(label: string, mediaAddress: string, streams: Stream[]) {
    this.peer = newPeer(label, mediaAddress);
    streams.forEach((stream, mid) => {
      const audio = new nodeDataChannel.Audio(String(mid), "SendOnly");
      audio.addOpusCodec(OPUS_PAYLOAD_TYPE, OPUS_FMTP);
      audio.addSSRC(stream.ssrc, `${label}-${mid}`, `${label}-stream`, `${label}-audio-${mid}`);
      const track = this.peer.addTrack(audio);
      this.tracks.push(track);
      stream.tracks.push(track);
    });
  }

  /** The offer, candidates included. */
  async offer(): Promise<string> {
    this.peer.setLocalDescription();
    await gathered(this.peer);
    return this.peer.localDescription()!.sdp;
  }

  /** Applies the answer; resolves once every track is open (ICE and DTLS done). */
  async answered(sdp: string): Promise<void> {
    const open = Promise.all(this.tracks.map((track) => new Promise<void>((resolve) => {
      if (track.isOpen()) resolve();
      else track.onOpen(() => resolve());
    })));
    this.peer.setRemoteDescription(sdp, "answer");
    await withTimeout(open, CONNECT_TIMEOUT_MS, "a sending peer's tracks opening");
  }

  close(): void {
    this.peer.close();
  }
}

/**
 * Sends each stream's packets at 50 a second on all its tracks; counts what it sent.
 * Stream i of n sends at i/n of the 20 ms frame, so a window's boundaries cut each
 * stream at a different phase: whether a stream's frame falls just inside or just
 * outside a window evens out over the streams, instead of moving every count by one.
 */
export class Ticker {
  sent = 0;
  private readonly startedAt = performance.now();
  private readonly frames: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly streams: Stream[]) {
    this.frames = streams.map(() => 0);
    this.timer = setInterval(() => this.tick(), 2);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const elapsedMs = performance.now() - this.startedAt;
    this.streams.forEach((stream, i) => {
      const due = Math.floor((elapsedMs - (i * FRAME_MS) / this.streams.length) / FRAME_MS) + 1;
      for (; this.frames[i]! < due; this.frames[i]!++) {
        stampRtp(stream.packet, this.frames[i]!);
        for (const track of stream.tracks) {
          if (!track.isOpen()) continue;
          try {
            track.sendMessageBinary(stream.packet);
            this.sent++;
          } catch { /* closed meanwhile */ }
        }
      }
    });
  }
}

/** What a receiving peer counts of one track. */
export interface TrackCount {
  mid: string;
  /** Held here: node-datachannel stops calling back a Track whose wrapper was garbage-collected. */
  track: Track;
  received: number;
  /** performance.now() of its first RTP packet, or undefined. */
  firstAtMs?: number;
}

export class ReceivingPeer {
  readonly peer: PeerConnection;
  readonly tracks = new Map<string, TrackCount>();
  private readonly waiters = new Set<() => void>();
  private answerWaiter: ((sdp: string) => void) | undefined;

  constructor(label: string, mediaAddress: string) {
    this.peer = newPeer(label, mediaAddress);
    this.peer.onTrack((track) => this.count(track));
    this.peer.onLocalDescription((sdp, type) => {
      if (type === "answer" && this.answerWaiter) { const waiter = this.answerWaiter; this.answerWaiter = undefined; waiter(sdp); }
    });
  }

  /** Applies an offer (the first, or a renegotiation); resolves with the answer, candidates included. */
  async answer(offerSdp: string): Promise<string> {
    const answered = new Promise<string>((resolve) => { this.answerWaiter = resolve; });
    this.peer.setRemoteDescription(offerForPassiveAnswer(offerSdp), "offer");
    await withTimeout(answered, CONNECT_TIMEOUT_MS, "an answer");
    await gathered(this.peer);
    return this.peer.localDescription()!.sdp;
  }

  /** Resolves once each of `mids` has had its first packet, or after `timeoutMs` (the silent ones are then left out). */
  async firstPackets(mids: string[], timeoutMs: number): Promise<void> {
    const all = () => mids.every((mid) => this.tracks.get(mid)?.firstAtMs !== undefined);
    if (all()) return;
    await new Promise<void>((resolve) => {
      const check = () => { if (all()) done(); };
      const done = () => { clearTimeout(timer); this.waiters.delete(check); resolve(); };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** RTP packets received on all tracks so far. */
  received(): number {
    let sum = 0;
    for (const track of this.tracks.values()) sum += track.received;
    return sum;
  }

  close(): void {
    this.peer.close();
  }

  private count(track: Track): void {
    const counted: TrackCount = { mid: track.mid(), track, received: 0 };
    this.tracks.set(counted.mid, counted);
    track.onMessage((packet) => {
      if (isRtcp(packet)) return;
      counted.received++;
      if (counted.firstAtMs === undefined) {
        counted.firstAtMs = performance.now();
        for (const waiter of this.waiters) waiter();
      }
    });
  }
}

/**
 * What the voice bench's processes say to each other (the parent, bench/voice.ts, and
 * its load children, lib/voice-load.ts), and what every load client puts on the wire:
 * Opus RTP at 50 packets a second, one fixed payload, sequence numbers and timestamps
 * advancing.
 */
import type { VoiceGrant } from "../../server/voice/VoiceBackend.ts";

/** 20 ms Opus frames. */
export const PACKETS_PER_S = 50;
export const FRAME_MS = 1000 / PACKETS_PER_S;
/** RTP timestamp step of a 20 ms frame at 48 kHz. */
export const TIMESTAMP_STEP = 960;
export const OPUS_PAYLOAD_TYPE = 111;
/** What the publishers offer (VideoRoom answers with what it keeps: useinbandfec, stereo). */
export const OPUS_FMTP = "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1";
/** Bytes of Opus payload per packet: TOC 0xFC (CELT fullband 20 ms, stereo, one frame) and 99 bytes of frame. */
export const OPUS_PAYLOAD_BYTES = 100;

/** A fixed, well-formed Opus packet: the TOC byte, then filler standing in for one coded frame. */
export function opusPayload(): Buffer {
  const payload = Buffer.alloc(OPUS_PAYLOAD_BYTES);
  payload[0] = 0xfc;
  for (let i = 1; i < payload.length; i++) payload[i] = (i * 37 + 11) & 0xff;
  return payload;
}

/** An RTP packet (version 2, no CSRC, no extension) of `payload`, to be rewritten per send by `stampRtp`. */
export function rtpPacket(ssrc: number, payload: Buffer): Buffer {
  const packet = Buffer.alloc(12 + payload.length);
  packet[0] = 0x80;
  packet[1] = OPUS_PAYLOAD_TYPE;
  packet.writeUInt32BE(ssrc >>> 0, 8);
  payload.copy(packet, 12);
  return packet;
}

/** Sets the packet's sequence number and timestamp (the n-th frame of its stream). */
export function stampRtp(packet: Buffer, frame: number): void {
  packet.writeUInt16BE(frame & 0xffff, 2);
  packet.writeUInt32BE((frame * TIMESTAMP_STEP) >>> 0, 4);
}

/** Whether a received packet is RTCP (packet types 200-206 where RTP has M + payload type): not counted. */
export function isRtcp(packet: Buffer): boolean {
  const type = packet[1]!;
  return type >= 200 && type <= 206;
}

/**
 * The offer as the load client applies it: every `a=setup:actpass` becomes `active`, so
 * that the client answers `passive` and the offerer (Janus, or the baseline's fan-out
 * peer) starts DTLS once its own ICE is ready. A client answering `active` sends its
 * ClientHello as soon as its side of ICE is up, before Janus has processed the answer;
 * Janus drops it, and libdatachannel's DTLS retransmits only after 1 s, which would then
 * be most of every subscribe-to-first-packet time.
 */
export function offerForPassiveAnswer(sdp: string): string {
  return sdp.replace(/a=setup:actpass/g, "a=setup:active");
}

/** The host candidates' addresses of an SDP. */
export function candidateAddresses(sdp: string): string[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ/gm)].map((match) => match[1]!);
}

/** What every load process is started with. */
export interface LoadConfig {
  /** speakers: Janus publishers; listeners: Janus subscribers (and baseline receivers); fanout: the baseline's sender. */
  role: "speakers" | "listeners" | "fanout";
  /** The bench run's id: on every load process' command line, so a leftover one can be found. */
  runId: string;
  label: string;
  /** The address the peers bind to and gather ICE candidates on. */
  mediaAddress: string;
  /** speakers: their grants (Janus' API URL, room, token, feed id each). */
  grants?: VoiceGrant[];
  /** fanout: the speakers whose packets it sends to every listener. */
  speakers?: number;
}

/** A speakers process' ready data: what the Janus answers named as candidates, and the feeds up. */
export interface SpeakersReady {
  feeds: string[];
  janusCandidates: string[];
}

/** One listener joining Janus' room: its grant, and the feeds to subscribe to (the first with the join, the rest with one update). */
export interface AddListeners {
  grants: VoiceGrant[];
  feeds: string[];
  /** Joins in flight at once. */
  concurrency: number;
}

/** Subscribe/update request to the first RTP packet of each track it added, ms, by how it was subscribed. */
export interface SubscribeTimes {
  join: number[];
  update: number[];
  /** Tracks that had no packet within the wait. */
  silent: number;
}

/** A load process' measuring window. */
export interface LoadWindow {
  windowMs: number;
  /** Receivers: tracks counted, and the RTP packets they received in the window. */
  tracks: number;
  received: number;
  /** Senders: packets sent in the window (fanout: one per track). */
  sent: number;
  /** The process' event-loop delay p99 over the window, ms. */
  eventLoopDelayP99Ms: number;
}

/**
 * Where voices sound (stereo spatial voice): each voice heard plays through a WebAudio
 * PannerNode placed where its visitor stands relative to you, facing your heading; a
 * stage voice, or one whose visitor is not in view, plays unplaced. Positions are read
 * again ten times a second.
 *
 * Chrome gives WebAudio no samples of a remote WebRTC track unless the track also plays
 * in a media element, so each voice also plays, muted, in an <audio> element.
 *
 * @example
 *   const space = new VoiceSpace({ me: () => expo.me, visitor: (id) => expo.neighbours.get(id) });
 *   space.placeAll(hear.feeds);
 *   space.play(feedId, track);
 */
import type { tsunagi } from "../../proto/index.ts";

/** Where you and the others stand (metres; heading in radians, 0 along +x). */
export interface Placement {
  me(): { x: number; y: number; heading: number };
  visitor(visitorId: number): { x: number; y: number } | undefined;
}

const PLACE_EVERY_MS = 100;

interface Voice {
  feed: tsunagi.v1.IVoiceFeed;
  element?: HTMLAudioElement;
  source?: MediaStreamAudioSourceNode;
  panner?: PannerNode;
  /** Reads the voice's samples for its level. */
  analyser?: AnalyserNode;
}

export class VoiceSpace {
  private readonly context = new AudioContext();
  private readonly voices = new Map<string, Voice>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly placement?: Placement) {
    this.timer = setInterval(() => this.place(), PLACE_EVERY_MS);
  }

  /** The voices heard now: each keeps its node; the others are let go. */
  placeAll(feeds: tsunagi.v1.IVoiceFeed[]): void {
    const wanted = new Set(feeds.map((feed) => feed.feedId!));
    for (const [feedId, voice] of this.voices) if (!wanted.has(feedId)) this.stop(feedId, voice);
    for (const feed of feeds) {
      const voice = this.voices.get(feed.feedId!);
      if (voice) voice.feed = feed;
      else this.voices.set(feed.feedId!, { feed });
    }
    this.place();
  }

  /** Plays a voice's track, placed. */
  play(feedId: string, track: MediaStreamTrack): void {
    const voice = this.voices.get(feedId) ?? { feed: { feedId } };
    this.voices.set(feedId, voice);
    voice.source?.disconnect();
    const stream = new MediaStream([track]);
    voice.element ??= Object.assign(new Audio(), { muted: true, autoplay: true });
    voice.element.srcObject = stream;
    void voice.element.play().catch(() => {});
    voice.source = this.context.createMediaStreamSource(stream);
    voice.panner ??= new PannerNode(this.context, { panningModel: "HRTF", distanceModel: "inverse", refDistance: 1, rolloffFactor: 1 });
    voice.analyser ??= new AnalyserNode(this.context, { fftSize: 512 });
    voice.source.connect(voice.analyser);
    voice.source.connect(voice.panner).connect(this.context.destination);
    void this.context.resume().catch(() => {});
    this.place();
  }

  /** Each playing voice's level now, 0..1 (the RMS of its last samples), by feed id. */
  levels(): Map<string, number> {
    const levels = new Map<string, number>();
    for (const [feedId, voice] of this.voices) {
      if (!voice.analyser) continue;
      const samples = new Float32Array(voice.analyser.fftSize);
      voice.analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      levels.set(feedId, Math.min(1, Math.sqrt(sum / samples.length)));
    }
    return levels;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const [feedId, voice] of this.voices) this.stop(feedId, voice);
    await this.context.close().catch(() => {});
  }

  private place(): void {
    const me = this.placement?.me();
    for (const voice of this.voices.values()) {
      if (!voice.panner) continue;
      const at = me && !voice.feed.stage && voice.feed.visitorId ? this.placement!.visitor(voice.feed.visitorId) : undefined;
      // Relative to you, turned so that your heading is straight ahead (WebAudio's -z).
      const [dx, dy] = at && me ? [at.x - me.x, at.y - me.y] : [0, 0];
      const cos = Math.cos(-(me?.heading ?? 0));
      const sin = Math.sin(-(me?.heading ?? 0));
      const ahead = dx * cos - dy * sin;
      const left = dx * sin + dy * cos;
      voice.panner.positionX.value = -left;
      voice.panner.positionY.value = 0;
      voice.panner.positionZ.value = -ahead;
    }
  }

  private stop(feedId: string, voice: Voice): void {
    voice.source?.disconnect();
    voice.panner?.disconnect();
    voice.analyser?.disconnect();
    if (voice.element) voice.element.srcObject = null;
    this.voices.delete(feedId);
  }
}

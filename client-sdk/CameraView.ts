/**
 * A machine's camera, in the operator's browser (voice.proto, "Cameras"): asks the teleop
 * room for a grant (CameraWatch), watches the device's Streaming mountpoint on the node's
 * Janus with it over plain WebRTC, and hands over the video as a MediaStream for a
 * <video> element. When the room moves or the media server restarts, `watchAgain()` (or
 * a new view) takes a fresh grant.
 *
 * @example
 *   const camera = await CameraView.watch(session, "excavator-1");
 *   videoElement.srcObject = camera.stream;
 *   (await camera.frames()).decoded;   // frames decoded so far
 *   camera.close();
 */
import type { Envelope, IEnvelope, tsunagi } from "../proto/index.ts";
import { JanusSignal, type WebSocketFactory } from "./voice/JanusSignal.ts";
import { whenGathered } from "./voice/sdp.ts";

const STREAMING = "janus.plugin.streaming";

/** What CameraView needs of the teleop room: a request and its reply. */
export interface CameraRoomLink {
  request(body: Omit<IEnvelope, "correlationId">): Promise<Envelope>;
}

export class CameraView {
  /** The camera's video, once its track arrived. */
  readonly stream = new MediaStream();

  private constructor(
    readonly grant: tsunagi.v1.CameraGrant,
    private readonly janus: JanusSignal,
    private readonly pc: RTCPeerConnection,
  ) {}

  /** Watches `deviceId`'s camera: resolves once Janus started sending it. */
  static async watch(room: CameraRoomLink, deviceId: string, options: { webSocket?: WebSocketFactory } = {}): Promise<CameraView> {
    const reply = await room.request({ cameraWatch: { deviceId } });
    const grant = reply.cameraGrant as tsunagi.v1.CameraGrant;
    const janus = await JanusSignal.connect(grant.url, grant.token, options.webSocket);
    const pc = new RTCPeerConnection();
    const view = new CameraView(grant, janus, pc);
    pc.ontrack = (event) => view.stream.addTrack(event.track);
    try {
      const handle = await janus.attach(STREAMING);
      const offered = await janus.message(handle, { request: "watch", id: grant.mountpointId, pin: grant.pin });
      if (!offered.jsep) throw new Error(`the media server sent no offer for ${deviceId}'s camera`);
      await pc.setRemoteDescription(offered.jsep);
      await pc.setLocalDescription(await pc.createAnswer());
      await whenGathered(pc);
      await janus.message(handle, { request: "start" }, pc.localDescription!.toJSON());
    } catch (error) {
      view.close();
      throw error;
    }
    return view;
  }

  /** Frames received and decoded so far, and the picture's size. */
  async frames(): Promise<{ received: number; decoded: number; width: number; height: number }> {
    const figures = { received: 0, decoded: 0, width: 0, height: 0 };
    (await this.pc.getStats()).forEach((report) => {
      if (report.type !== "inbound-rtp" || report.kind !== "video") return;
      figures.received = report.framesReceived ?? 0;
      figures.decoded = report.framesDecoded ?? 0;
      figures.width = report.frameWidth ?? 0;
      figures.height = report.frameHeight ?? 0;
    });
    return figures;
  }

  close(): void {
    this.pc.close();
    this.janus.close();
    for (const track of this.stream.getTracks()) track.stop();
  }
}

/**
 * The node's voice at start (RegionNode): by `voice.mode`, nothing; or its own Janus
 * (JanusProcess), the backend rooms use for voice (JanusVoiceBackend) and the one teleop
 * rooms use for the machines' cameras (JanusCameras), both reconnected whenever Janus is
 * started again.
 *
 * - off: no voice.
 * - on: Janus must start, or the node does not (the error says how to install it).
 * - auto: on when Janus is installed; otherwise off, and the log says the
 *   one command that installs it.
 */
import type { NodeConfig } from "../config.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { JanusMissing, JanusProcess } from "./JanusProcess.ts";
import { JanusVoiceBackend } from "./JanusVoiceBackend.ts";
import { JanusCameras } from "./JanusCameras.ts";

/** The machines' cameras on the node's Janus, for teleop rooms. */
export interface NodeCameras {
  readonly backend: JanusCameras;
  /** One more each time Janus started again: every mountpoint was made again, and adapters need their new target. */
  readonly generation: number;
}

export interface NodeVoice {
  backend: JanusVoiceBackend;
  cameras: NodeCameras;
  /** Releases every voice room and stops Janus. */
  stop(): Promise<void>;
}

export async function startVoice(config: NodeConfig, logger: Logger, metrics: NodeMetrics): Promise<NodeVoice | undefined> {
  const { mode, host, rtpPortRange, mediaInterfaces, grantTtlMs } = config.voice;
  if (mode === "off") return undefined;
  let backend: JanusVoiceBackend | undefined;
  let cameras: { backend: JanusCameras; generation: number } | undefined;
  let janus: JanusProcess;
  try {
    janus = await JanusProcess.start({
      host, rtpPortRange, mediaInterfaces, serverName: config.nodeId, logger,
      onExit: () => { backend?.janusDown(); cameras?.backend.janusDown(); },
      onRestart: () => {
        metrics.janusRestarts.inc();
        void backend?.restarted().catch((error) => logger.error({ err: error }, "voice: could not reconnect to Janus after its restart"));
        void cameras?.backend.restarted().then(() => { cameras!.generation++; }, (error) => logger.error({ err: error }, "cameras: could not reconnect to Janus after its restart"));
      },
    });
  } catch (error) {
    if (mode === "auto" && error instanceof JanusMissing) {
      logger.warn(`voice is off: ${error.message}`);
      return undefined;
    }
    throw error;
  }
  try {
    backend = await JanusVoiceBackend.connect(janus.endpoint, { logger, grantTtlMs });
    cameras = { backend: await JanusCameras.connect(janus.endpoint, { logger, grantTtlMs }), generation: 0 };
  } catch (error) {
    await backend?.close().catch(() => {});
    await janus.stop();
    throw new Error(`voice: could not connect to the Janus it started: ${(error as Error).message}`, { cause: error });
  }
  const connected = backend;
  const machineCameras = cameras;
  metrics.voiceHealth = () => connected.health();
  return {
    backend: connected,
    cameras: machineCameras,
    stop: async () => {
      await connected.close().catch((error) => logger.warn({ err: error }, "voice: closing the backend failed"));
      await machineCameras.backend.shutdown().catch((error) => logger.warn({ err: error }, "cameras: closing failed"));
      await janus.stop();
    },
  };
}

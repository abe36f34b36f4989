/**
 * The node's voice at start (RegionNode): by `voice.mode`, nothing; or its own Janus
 * (JanusProcess) and the backend rooms use (JanusVoiceBackend), the backend reconnected
 * whenever Janus is started again.
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

export interface NodeVoice {
  backend: JanusVoiceBackend;
  /** Releases every voice room and stops Janus. */
  stop(): Promise<void>;
}

export async function startVoice(config: NodeConfig, logger: Logger, metrics: NodeMetrics): Promise<NodeVoice | undefined> {
  const { mode, host, rtpPortRange, mediaInterfaces, grantTtlMs } = config.voice;
  if (mode === "off") return undefined;
  let backend: JanusVoiceBackend | undefined;
  let janus: JanusProcess;
  try {
    janus = await JanusProcess.start({
      host, rtpPortRange, mediaInterfaces, serverName: config.nodeId, logger,
      onExit: () => backend?.janusDown(),
      onRestart: () => {
        metrics.janusRestarts.inc();
        void backend?.restarted().catch((error) => logger.error({ err: error }, "voice: could not reconnect to Janus after its restart"));
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
  } catch (error) {
    await janus.stop();
    throw new Error(`voice: could not connect to the Janus it started: ${(error as Error).message}`, { cause: error });
  }
  const connected = backend;
  metrics.voiceHealth = () => connected.health();
  return {
    backend: connected,
    stop: async () => {
      await connected.close().catch((error) => logger.warn({ err: error }, "voice: closing the backend failed"));
      await janus.stop();
    },
  };
}

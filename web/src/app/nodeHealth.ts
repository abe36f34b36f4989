/**
 * What the node serving the page says of itself (`GET /healthz`): whether it runs voice
 * (and its SFU is up). Pages offer voice only when it does, and work without it.
 *
 * @example
 *   if (await nodeHasVoice()) showJoinVoiceButton();
 */
export interface NodeHealth {
  status: string;
  regionId?: string;
  nodeId?: string;
  /** "off", or the voice backend's health ({ up, rooms, participants }). */
  voice?: "off" | { up?: boolean } | string;
}

export async function nodeHealth(): Promise<NodeHealth | undefined> {
  try {
    const response = await fetch("/healthz", { cache: "no-store" });
    return (await response.json()) as NodeHealth;
  } catch {
    return undefined;
  }
}

/** Whether the node runs voice and its SFU is up; false on any doubt. */
export async function nodeHasVoice(): Promise<boolean> {
  const voice = (await nodeHealth())?.voice;
  if (!voice || voice === "off") return false;
  return typeof voice !== "object" || voice.up !== false;
}

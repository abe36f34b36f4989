/**
 * LivenessProbes: a ping answered in time is alive, an unanswered or unsendable one is
 * not, and close() settles whatever is pending; settleDuplicate keeps a connected link
 * that answers and replaces one that does not.
 */
import { describe, expect, it } from "vitest";
import type { IEnvelope } from "../../../../proto/index.ts";
import { LivenessProbes } from "../../../../server/gateway/LivenessProbes.ts";

/** A link that answers its pings (or not), through `probes`. */
function link(probes: LivenessProbes, answers: boolean) {
  const sent: IEnvelope[] = [];
  return {
    sent, online: true,
    write(envelope: IEnvelope) {
      sent.push(envelope);
      if (answers) queueMicrotask(() => probes.answered(Number(envelope.correlationId)));
      return true;
    },
  };
}

describe("LivenessProbes", () => {
  it("resolves true when the Pong comes back, false when it does not or cannot be sent", async () => {
    const probes = new LivenessProbes(50, () => 1000);
    const alive = link(probes, true);
    expect(await probes.ping((envelope) => alive.write(envelope))).toBe(true);
    expect(alive.sent[0]).toMatchObject({ ping: { clientTimeMs: 1000 } });
    expect(Number(alive.sent[0].correlationId)).toBeGreaterThan(2 ** 52); // far from a link's own ids
    expect(await probes.ping(() => true)).toBe(false); // silent: the timeout settles it
    expect(await probes.ping(() => false)).toBe(false);
    expect(probes.answered(12345)).toBe(false);
  });

  it("close() settles pending probes as unanswered", async () => {
    const probes = new LivenessProbes(60_000, Date.now);
    const pending = probes.ping(() => true);
    probes.close();
    expect(await pending).toBe(false);
  });

  it("settleDuplicate: refuse while the connected link answers, replace when it is silent, offline or gone", async () => {
    const probes = new LivenessProbes(50, Date.now);
    expect(await probes.settleDuplicate(() => link(probes, true))).toBe("replace"); // a different link each call: it is no longer the device's
    const answering = link(probes, true);
    expect(await probes.settleDuplicate(() => answering)).toBe("refuse");
    const silent = link(probes, false);
    expect(await probes.settleDuplicate(() => silent)).toBe("replace");
    expect(await probes.settleDuplicate(() => ({ ...answering, online: false }))).toBe("replace");
    expect(await probes.settleDuplicate(() => undefined)).toBe("replace");
  });
});

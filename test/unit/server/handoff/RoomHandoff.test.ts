/**
 * RoomHandoff's state machine against a scripted room and target: the order of states,
 * rollback when the target fails before the Switch (the queued inputs applied where the
 * room stayed), a lost Switch answer settled by the directory either way, and refusals
 * before anything is frozen.
 */
import { describe, it, expect } from "vitest";
import { RoomHandoff, type HandoffPeer } from "../../../../server/handoff/RoomHandoff.ts";
import { HandoffState, type HandoffRecord, type Migratable, type QueuedInput, type RoomSnapshot } from "../../../../server/handoff/types.ts";
import { InMemoryRoomDirectory } from "../../../../server/cluster/RoomDirectory.ts";
import { NodeMetrics } from "../../../../server/observability/metrics.ts";
import { createLogger } from "../../../../server/observability/logging.ts";
import type { NodeInfo } from "../../../../server/cluster/types.ts";

const logger = createLogger({ level: "silent", format: "json", regionId: "jp-tokyo", nodeId: "tokyo-1" });
const target: NodeInfo = {
  nodeId: "osaka-1", regionId: "jp-osaka", publicAddress: "127.0.0.1:2", processId: "p", draining: false, startedAt: 0, heartbeatAt: 0,
  load: { ccu: 0, rooms: 0, eventLoopLagMs: 0, overloaded: false },
};

/** A room that records what the handoff asked of it. */
class ScriptedRoom implements Migratable {
  readonly roomId = "session__r";
  readonly roomName = "session";
  calls: string[] = [];
  history: HandoffRecord[] = [];
  queued: QueuedInput[] = [{ sessionId: "s1", kind: "envelope", bytes: "AA==" }];
  late: QueuedInput[] = [{ sessionId: "s2", kind: "envelope", bytes: "AQ==" }];
  redirected?: ReadonlyMap<string, string>;
  moving = false;
  retired = false;
  constructor(public token: string, private readonly unmovable?: string) {}
  unmovableReason() { return this.unmovable; }
  freeze() { this.calls.push("freeze"); }
  async snapshot(): Promise<RoomSnapshot> {
    this.calls.push("snapshot");
    return {
      version: 1, roomName: this.roomName, roomId: this.roomId, name: "r", createdAt: 0, maxClients: null, token: this.token, takenAt: 0,
      options: {}, state: {}, sessions: [{ sessionId: "s1", auth: {}, inputSeq: 3, followsHandoff: true, data: null }], queued: this.queued, history: [],
    };
  }
  takeQueued() { this.calls.push("takeQueued"); return this.late; }
  announceSeats() { this.calls.push("announceSeats"); }
  cancelSeats() { this.calls.push("cancelSeats"); }
  thaw() { this.calls.push("thaw"); }
  redirect(_to: unknown, reservations: ReadonlyMap<string, string>) { this.calls.push("redirect"); this.redirected = reservations; }
  recordHandoff(record: HandoffRecord) { this.history = [structuredClone(record)]; }
  renewed?: string;
  claimEntry() { return { roomId: this.roomId, roomName: this.roomName, regionId: "jp-tokyo", nodeId: "tokyo-1", publicAddress: "a", ccu: 1, maxClients: null, createdAt: 0 }; }
  claimRenewed(token: string) { this.renewed = token; }
  claimLost() {}
  regionRtts() { return []; }
  async reassertClaim() { this.calls.push("reassertClaim"); }
  handoffHistory() { return this.history; }
}

async function setup(unmovable?: string) {
  const directory = new InMemoryRoomDirectory();
  const claim = await directory.claim({ roomId: "session__r", roomName: "session", regionId: "jp-tokyo", nodeId: "tokyo-1", publicAddress: "a", ccu: 1, maxClients: null, createdAt: 0 });
  if (!claim.claimed) throw new Error("not claimed");
  const room = new ScriptedRoom(claim.token, unmovable);
  const deps = { self: { regionId: "jp-tokyo", nodeId: "tokyo-1" }, directory, logger, metrics: new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) }), seatSeconds: 5, switchCheckMs: 200 };
  return { directory, room, deps, token: claim.token };
}

/** The target's side, with each step's outcome chosen by the test. */
function peer(directory: InMemoryRoomDirectory, script: { prepare?: "fail"; commit?: "ok" | "fail" | "lost-after-switch" | "lost-before-switch" }) {
  const calls: string[] = [];
  const carried: QueuedInput[][] = [];
  let late: Promise<string> | undefined;
  const switchRoom = async (fromToken: string) => {
    const result = await directory.transfer({ roomId: "session__r", roomName: "session", regionId: "jp-osaka", nodeId: "osaka-1", publicAddress: "b", ccu: 1, maxClients: null, createdAt: 0 }, fromToken);
    if (!result.claimed) throw new Error("not switched");
    return result.token;
  };
  const impl: HandoffPeer = {
    async prepare(_t, _id, snapshot) {
      calls.push("prepare");
      carried.push(snapshot.queued);
      if (script.prepare === "fail") throw new Error("target unreachable");
      return { reservations: { s1: "{\"sessionId\":\"s1\"}" } };
    },
    async arrivals() { calls.push("arrivals"); return { arrived: 1, expected: 1 }; },
    async refresh(_t, _id, snapshot) {
      calls.push("refresh");
      carried.push(snapshot.queued);
      return {};
    },
    async commit(_t, _id, fromToken, queued) {
      calls.push("commit");
      carried.push(queued);
      if (script.commit === "fail") throw new Error("target died");
      if (script.commit === "lost-before-switch") {
        // The target's Switch is late: it reaches the directory after the source gave up on the answer.
        late = new Promise((resolve) => setTimeout(resolve, 300)).then(() => switchRoom(fromToken)).then(() => "switched", (error: Error) => error.message);
        throw new Error("answer lost");
      }
      const token = await switchRoom(fromToken);
      if (script.commit === "lost-after-switch") throw new Error("answer lost");
      return token;
    },
    async abort() { calls.push("abort"); },
  };
  return { impl, calls, carried, late: () => late };
}

const states = (record: HandoffRecord) => record.transitions.map((t) => t.state);

describe("RoomHandoff", () => {
  it("goes Init → Freeze → Transfer → Switch → Redirect → Complete, carrying every queued input once", async () => {
    const { directory, room, deps } = await setup();
    const target$ = peer(directory, { commit: "ok" });
    const record = await new RoomHandoff(room, target, "admin", target$.impl, { ...deps, arrivalWaitMs: 100 }).run();
    expect(states(record)).toEqual(["init", "freeze", "transfer", "switch", "redirect", "complete"]);
    expect(record.arrived).toEqual({ arrived: 1, expected: 1 });
    expect(record).toMatchObject({ outcome: HandoffState.Complete, sessions: 1, carriedInputs: 2, from: { regionId: "jp-tokyo" }, to: { regionId: "jp-osaka", nodeId: "osaka-1" } });
    expect(room.calls).toEqual(["snapshot", "announceSeats", "freeze", "snapshot", "takeQueued", "redirect"]);
    // prepare (the live snapshot), refresh (the frozen one), then the Switch's late inputs.
    expect(target$.carried).toEqual([room.queued, room.queued, room.late]);
    // The clients took their seats (arrivals) before the room froze.
    expect(target$.calls).toEqual(["prepare", "arrivals", "refresh", "commit"]);
    expect(room.redirected?.get("s1")).toContain("s1");
    expect(await directory.get("session__r")).toMatchObject({ nodeId: "osaka-1" });
    expect(room.history[0]).toMatchObject({ id: record.id, outcome: "complete" });
  });

  it("rolls back when the target cannot open the room: nothing was frozen, the target drops its copy", async () => {
    const { directory, room, deps } = await setup();
    const target$ = peer(directory, { prepare: "fail" });
    const record = await new RoomHandoff(room, target, "admin", target$.impl, deps).run();
    expect(states(record)).toEqual(["init", "aborted"]);
    expect(record.error).toMatch(/did not open the room: target unreachable/);
    // Nothing was frozen: the room ran on; nobody had been sent a seat.
    expect(room.calls).toEqual(["snapshot"]);
    expect(target$.calls).toEqual(["prepare", "abort"]);
    expect(await directory.get("session__r")).toMatchObject({ nodeId: "tokyo-1" });
  });

  it("rolls back when the Switch did not happen (this node takes the claim back)", async () => {
    const { directory, room, deps, token } = await setup();
    const target$ = peer(directory, { commit: "fail" });
    const record = await new RoomHandoff(room, target, "drain", target$.impl, deps).run();
    expect(states(record)).toEqual(["init", "freeze", "transfer", "switch", "aborted"]);
    expect(room.calls).toEqual(["snapshot", "announceSeats", "freeze", "snapshot", "takeQueued", "cancelSeats", "thaw", "reassertClaim"]);
    expect(target$.calls).toEqual(["prepare", "refresh", "commit", "abort"]);
    // Settled by taking the claim back: this node holds it under a newer token, which the room writes with.
    const entry = await directory.get("session__r");
    expect(entry).toMatchObject({ nodeId: "tokyo-1" });
    expect(BigInt(entry!.token) > BigInt(token)).toBe(true);
    expect(room.renewed).toBe(entry!.token);
  });

  it("goes on when the Switch happened but its answer was lost (the directory names the target)", async () => {
    const { directory, room, deps } = await setup();
    const target$ = peer(directory, { commit: "lost-after-switch" });
    const record = await new RoomHandoff(room, target, "admin", target$.impl, deps).run();
    expect(record.outcome).toBe(HandoffState.Complete);
    expect(room.calls).toEqual(["snapshot", "announceSeats", "freeze", "snapshot", "takeQueued", "redirect"]);
    expect(target$.calls).not.toContain("abort");
  });

  it("settles a lost answer by taking the claim back: a Switch that had not happened then never can, and the room rolls back here", async () => {
    const { directory, room, deps, token } = await setup();
    const target$ = peer(directory, { commit: "lost-before-switch" });
    const record = await new RoomHandoff(room, target, "admin", target$.impl, deps).run();
    expect(record.outcome).toBe(HandoffState.Aborted);
    expect(room.calls).toContain("thaw");
    const entry = await directory.get("session__r");
    expect(entry).toMatchObject({ nodeId: "tokyo-1" });
    expect(entry!.token).not.toBe(token);
    expect(room.renewed).toBe(entry!.token);
    // The target's late Switch from the old token is refused: never two live copies.
    expect(await target$.late()).toBe("not switched");
    expect(await directory.get("session__r")).toMatchObject({ nodeId: "tokyo-1", token: entry!.token });
  });

  it("refuses a room that cannot move, and a target that is this node, before freezing anything", async () => {
    const { directory, room, deps } = await setup("already moving");
    const target$ = peer(directory, {});
    const record = await new RoomHandoff(room, target, "admin", target$.impl, deps).run();
    expect(record).toMatchObject({ outcome: "aborted", error: "already moving" });
    expect(room.calls).toEqual([]);
    const self = await setup();
    const toSelf = await new RoomHandoff(self.room, { ...target, nodeId: "tokyo-1" }, "admin", target$.impl, self.deps).run();
    expect(toSelf).toMatchObject({ outcome: "aborted", error: "the target is this node" });
    expect(target$.calls).toEqual([]);
  });
});

/**
 * ControlLease against a reference model: a seeded random run of tens of thousands of
 * operations checked against a small restatement of the rules, then a race of two
 * operators. Time is a plain number passed in; nothing here waits.
 */
import { describe, it, expect } from "vitest";
import { ControlLease, leaseRefusalReasons, type ControlLeaseEventName, type LeaseRefusalReason } from "../../../../rooms/teleop/ControlLease.ts";
import type { Role } from "../../../../server/auth/tokens.ts";
import { prng } from "../../../fixtures/random.ts";
import { TTL, eventNames, reasonOf, setup, type Recorded } from "./controlLeaseSetup.ts";

// --- model test ------------------------------------------------------------------------

/**
 * The reference model: the lease rules restated as plainly as possible, with leases as
 * numbers. The test maps the real lease ids onto these numbers as they appear, which
 * also checks that each fresh grant brings an id never seen before.
 */
type ModelCause = "released" | "disconnected" | "expired" | "preempted" | "transferred" | "estopped";
type ModelResult = { status: string; reason?: LeaseRefusalReason; leaseNo?: number; fresh?: boolean };
type ModelEvent = [ControlLeaseEventName, ...number[]];

class LeaseModel {
  holder: { no: number; session: string; expiresAt: number } | undefined;
  estopped = false;
  /** Ended leases, oldest first, capped like the real one. */
  ended = new Map<number, { session: string; cause: ModelCause }>();
  events: ModelEvent[] = [];
  private nextNo = 1;

  constructor(private readonly memory: number) {}

  private end(cause: ModelCause): number {
    const { no, session } = this.holder!;
    this.holder = undefined;
    this.ended.set(no, { session, cause });
    if (this.ended.size > this.memory) this.ended.delete(this.ended.keys().next().value!);
    return no;
  }

  private grant(session: string, now: number): number {
    this.holder = { no: this.nextNo++, session, expiresAt: now + TTL };
    return this.holder.no;
  }

  expire(now: number) {
    if (this.holder && now >= this.holder.expiresAt) this.events.push(["expired", this.end("expired")]);
  }

  acquire(session: string, role: Role, now: number): ModelResult {
    this.expire(now);
    if (role !== "operator" && role !== "supervisor") return { status: "refused", reason: "ROLE_NOT_ALLOWED" };
    if (this.estopped) return { status: "refused", reason: "ESTOPPED" };
    if (this.holder?.session === session) {
      this.holder.expiresAt = now + TTL;
      return { status: "granted", leaseNo: this.holder.no, fresh: false };
    }
    if (this.holder) return { status: "refused", reason: "HELD_BY_OTHER" };
    const no = this.grant(session, now);
    this.events.push(["granted", no]);
    return { status: "granted", leaseNo: no, fresh: true };
  }

  letGo(session: string, cause: "released" | "disconnected", now: number): ModelResult {
    this.expire(now);
    if (this.holder?.session !== session) return { status: "refused", reason: "NOT_HOLDER" };
    const no = this.end(cause);
    this.events.push(["released", no]);
    return { status: "released", leaseNo: no };
  }

  transfer(from: string, to: string, toRole: Role, now: number): ModelResult {
    this.expire(now);
    if (this.estopped) return { status: "refused", reason: "ESTOPPED" };
    if (this.holder?.session !== from) return { status: "refused", reason: "NOT_HOLDER" };
    if (toRole !== "operator" && toRole !== "supervisor") return { status: "refused", reason: "ROLE_NOT_ALLOWED" };
    if (to === from) return { status: "refused", reason: "INVALID_TARGET" };
    const previous = this.end("transferred");
    const no = this.grant(to, now);
    this.events.push(["transferred", previous, no]);
    return { status: "granted", leaseNo: no, fresh: true };
  }

  preempt(session: string, role: Role, now: number): ModelResult {
    this.expire(now);
    if (role !== "supervisor") return { status: "refused", reason: "NOT_SUPERVISOR" };
    if (this.estopped) return { status: "refused", reason: "ESTOPPED" };
    if (this.holder?.session === session) {
      this.holder.expiresAt = now + TTL;
      return { status: "granted", leaseNo: this.holder.no, fresh: false };
    }
    if (!this.holder) {
      const no = this.grant(session, now);
      this.events.push(["granted", no]);
      return { status: "granted", leaseNo: no, fresh: true };
    }
    const previous = this.end("preempted");
    const no = this.grant(session, now);
    this.events.push(["preempted", previous, no]);
    return { status: "granted", leaseNo: no, fresh: true };
  }

  /** leaseNo undefined: an id the lease never granted. */
  check(session: string, leaseNo: number | undefined, now: number): ModelResult {
    this.expire(now);
    if (this.estopped) return { status: "refused", reason: "ESTOPPED" };
    if (this.holder && this.holder.no === leaseNo) {
      return this.holder.session === session ? { status: "valid", leaseNo } : { status: "refused", reason: "NOT_HOLDER" };
    }
    const ended = leaseNo === undefined ? undefined : this.ended.get(leaseNo);
    if (!ended) return { status: "refused", reason: "UNKNOWN_LEASE" };
    if (ended.session !== session) return { status: "refused", reason: "NOT_HOLDER" };
    return { status: "refused", reason: ended.cause === "expired" ? "EXPIRED" : "LEASE_ENDED" };
  }

  renew(session: string, leaseNo: number | undefined, now: number): ModelResult {
    const result = this.check(session, leaseNo, now);
    if (result.status !== "valid") return result;
    this.holder!.expiresAt = now + TTL;
    return { status: "renewed", leaseNo };
  }

  estop(now: number): ModelResult {
    this.expire(now);
    if (this.estopped) return { status: "estopped" };
    this.estopped = true;
    if (this.holder) this.events.push(["estopped", this.end("estopped")]);
    else this.events.push(["estopped"]);
    return { status: "estopped" };
  }

  reset(role: Role, now: number): ModelResult {
    this.expire(now);
    if (role !== "supervisor") return { status: "refused", reason: "NOT_SUPERVISOR" };
    if (!this.estopped) return { status: "refused", reason: "NOT_ESTOPPED" };
    this.estopped = false;
    this.events.push(["reset"]);
    return { status: "reset" };
  }
}

const sessions: { id: string; role: Role }[] = [
  { id: "op-a", role: "operator" },
  { id: "op-b", role: "operator" },
  { id: "op-c", role: "operator" },
  { id: "sup-a", role: "supervisor" },
  { id: "sup-b", role: "supervisor" },
  { id: "guest", role: "visitor" },
  { id: "adm", role: "admin" },
];

/** Runs `steps` random operations against a real lease and the model; returns what it saw. */
function runModel(seed: number, steps: number, memory: number) {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  let next = 0;
  const listenerFailures: Error[] = [];
  const lease = new ControlLease({
    deviceId: "ex-1", ttlMs: TTL, endedLeaseMemory: memory, newLeaseId: () => `id-${seed}-${++next}`,
    onListenerError: (error) => listenerFailures.push(error),
  });
  const model = new LeaseModel(memory);

  // real id <-> model number
  const idOfNo = new Map<number, string>();
  const noOfId = new Map<string, number>();
  // holders as the events tell it, and every id an event declared dead
  const liveByEvents = new Set<string>();
  const deadIds = new Set<string>();
  let realEvents: Recorded[] = [];
  let grantedEvents = 0;
  for (const name of eventNames) {
    lease.on(name, (event) => {
      realEvents.push([name, event] as Recorded);
      const e = event as Partial<{ lease: { leaseId: string }; previous: { leaseId: string }; endedLease: { leaseId: string } }>;
      if (name === "granted" || name === "preempted" || name === "transferred") {
        expect(liveByEvents.has(e.lease!.leaseId)).toBe(false);
        liveByEvents.add(e.lease!.leaseId);
      }
      for (const gone of name === "released" || name === "expired" ? [e.lease] : [e.previous, e.endedLease]) {
        if (!gone) continue;
        expect(liveByEvents.delete(gone.leaseId)).toBe(true);
        deadIds.add(gone.leaseId);
      }
      // more than one holder at any moment, as seen from the events: impossible
      expect(liveByEvents.size).toBeLessThanOrEqual(1);
    });
  }
  // a listener that always throws: the lease must not notice
  lease.on("granted", () => {
    grantedEvents++;
    throw new Error("listener bug");
  });

  const counts = new Map<string, number>();
  const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  let now = 0;

  function compare(label: string, real: { status: string; reason?: LeaseRefusalReason; lease?: { leaseId: string }; fresh?: boolean }, expected: ModelResult) {
    const where = `seed ${seed}, ${label}`;
    expect(real.status, where).toBe(expected.status);
    expect(real.reason, where).toBe(expected.reason);
    count(real.reason ?? real.status);
    if (expected.leaseNo !== undefined && real.lease) {
      const id = real.lease.leaseId;
      if (expected.fresh) {
        // a fresh grant: an id never seen before, now bound to the model's new number
        expect(noOfId.has(id), `${where}: fresh grant reused id ${id}`).toBe(false);
        idOfNo.set(expected.leaseNo, id);
        noOfId.set(id, expected.leaseNo);
      }
      expect(id, where).toBe(idOfNo.get(expected.leaseNo));
      expect(real.fresh, where).toBe(expected.fresh);
      // a grant, renewal or check never accepts an id that has died
      if (real.status !== "released") expect(deadIds.has(id), `${where}: accepted dead lease id ${id}`).toBe(false);
    }
    // events: the same ones, in the same order, about the same leases
    const translated = realEvents.map(([name, event]): ModelEvent => {
      const e = event as Partial<{ lease: { leaseId: string }; previous: { leaseId: string }; endedLease: { leaseId: string } }>;
      const ids = name === "preempted" || name === "transferred" ? [e.previous!, e.lease!] : [e.lease ?? e.endedLease].filter((x) => x !== undefined);
      return [name, ...ids.map((grant) => noOfId.get(grant.leaseId)!)];
    });
    expect(translated, where).toEqual(model.events);
    realEvents = [];
    model.events = [];
    // the holder, as the lease and the model see it
    const holder = lease.holder;
    expect(holder?.sessionId, where).toBe(model.holder?.session);
    if (holder) {
      expect(holder.leaseId, where).toBe(idOfNo.get(model.holder!.no));
      expect(holder.expiresAt, where).toBe(model.holder!.expiresAt);
      expect([...liveByEvents], where).toEqual([holder.leaseId]);
    } else {
      expect(liveByEvents.size, where).toBe(0);
    }
    expect(lease.estopped, where).toBe(model.estopped);
  }

  /** A lease id to present: the holder's, an old one, or one never granted. */
  function pickLeaseId(): string {
    const roll = random();
    if (roll < 0.5 && lease.holder) return lease.holder.leaseId;
    if (roll < 0.9 && idOfNo.size > 0) return idOfNo.get(1 + Math.floor(random() * idOfNo.size))!;
    return `forged-${Math.floor(random() * 3)}`;
  }

  /** Usually the holder (when there is one), else anyone. */
  function pickActor() {
    const holder = lease.holder;
    if (holder && random() < 0.5) return sessions.find((s) => s.id === holder.sessionId)!;
    return pick(sessions);
  }

  for (let step = 0; step < steps; step++) {
    const roll = random();
    if (roll < 0.17) {
      const s = pick(sessions);
      compare(`step ${step} acquire(${s.id})`, lease.acquire(s.id, s.role, now), model.acquire(s.id, s.role, now));
    } else if (roll < 0.25) {
      const s = pickActor();
      compare(`step ${step} release(${s.id})`, lease.release(s.id, now), model.letGo(s.id, "released", now));
    } else if (roll < 0.3) {
      const s = pickActor();
      compare(`step ${step} holderDisconnected(${s.id})`, lease.holderDisconnected(s.id, now), model.letGo(s.id, "disconnected", now));
    } else if (roll < 0.38) {
      const from = pickActor();
      const to = pick(sessions);
      compare(`step ${step} transfer(${from.id}->${to.id})`, lease.transfer(from.id, to.id, to.role, now), model.transfer(from.id, to.id, to.role, now));
    } else if (roll < 0.44) {
      const s = pick(sessions);
      compare(`step ${step} preempt(${s.id})`, lease.preempt(s.id, s.role, now), model.preempt(s.id, s.role, now));
    } else if (roll < 0.6) {
      const s = pickActor();
      const id = pickLeaseId();
      compare(`step ${step} renew(${s.id}, ${id})`, lease.renew(s.id, id, now), model.renew(s.id, noOfId.get(id), now));
    } else if (roll < 0.68) {
      const s = pickActor();
      const id = pickLeaseId();
      compare(`step ${step} check(${s.id}, ${id})`, lease.check(s.id, id, now), model.check(s.id, noOfId.get(id), now));
    } else if (roll < 0.71) {
      const s = pick(sessions);
      compare(`step ${step} estop(${s.id})`, lease.estop(s.id, "model test", now), model.estop(now));
    } else if (roll < 0.76) {
      const s = pick(sessions);
      compare(`step ${step} reset(${s.id})`, lease.reset(s.id, s.role, now), model.reset(s.role, now));
    } else {
      // the clock moves: mostly a little, sometimes to the exact expiry, sometimes far
      const kind = random();
      if (kind < 0.7) now += Math.floor(random() * 400);
      else if (kind < 0.85 && lease.holder) now = Math.max(now, lease.holder.expiresAt - (random() < 0.5 ? 1 : 0));
      else now += TTL + Math.floor(random() * 2 * TTL);
      count("advance");
      // the owner's tick runs only sometimes: the lease must also notice a lapse on its own
      if (random() < 0.5) {
        const expired = lease.expire(now);
        const before = model.holder?.no;
        model.expire(now);
        expect(expired?.leaseId, `seed ${seed}, step ${step} expire`).toBe(before !== undefined && !model.holder ? idOfNo.get(before) : undefined);
        compare(`step ${step} expire(${now})`, { status: "tick" }, { status: "tick" });
      }
    }

    // a dead id is never accepted again: probe one with its own session
    if (deadIds.size > 0 && step % 7 === 0) {
      const dead = [...deadIds][Math.floor(random() * deadIds.size)];
      const session = lease.holder?.leaseId === dead ? undefined : sessionOfNo(noOfId.get(dead)!);
      if (session) {
        const result = lease.check(session, dead, now);
        expect(result.status, `seed ${seed}, step ${step}: dead id ${dead} accepted`).toBe("refused");
        compare(`step ${step} probe check(${session}, ${dead})`, result, model.check(session, noOfId.get(dead), now));
      }
    }
  }

  function sessionOfNo(no: number): string | undefined {
    return model.ended.get(no)?.session ?? sessions[Math.floor(random() * sessions.length)].id;
  }

  // at the end, every dead id is refused, for every session
  for (const dead of deadIds) {
    for (const s of sessions) expect(lease.check(s.id, dead, now).status).toBe("refused");
  }
  expect(listenerFailures).toHaveLength(grantedEvents);
  return { counts, leases: idOfNo.size, deadIds: deadIds.size };
}

describe("ControlLease: model test", () => {
  const STEPS = 12_000;

  for (const seed of [1, 7, 2026]) {
    it(`agrees with the reference model over ${STEPS} random operations (seed ${seed})`, () => {
      const { counts, leases } = runModel(seed, STEPS, 1_000_000);
      // the run reached every outcome, so the agreement means something
      for (const reason of leaseRefusalReasons) {
        if (reason === "CLOSED") continue;
        expect(counts.get(reason) ?? 0, `seed ${seed}: ${reason} never happened`).toBeGreaterThan(0);
      }
      for (const status of ["granted", "released", "renewed", "valid", "estopped", "reset"]) {
        expect(counts.get(status) ?? 0, `seed ${seed}: ${status} never happened`).toBeGreaterThan(0);
      }
      expect(leases).toBeGreaterThan(100);
    });
  }

  it("agrees with the model when ended ids fall out of a small memory", () => {
    const { counts } = runModel(99, STEPS, 3);
    expect(counts.get("UNKNOWN_LEASE") ?? 0).toBeGreaterThan(0);
    expect(counts.get("LEASE_ENDED") ?? 0).toBeGreaterThan(0);
  });
});

describe("ControlLease: two operators race", () => {
  it("exactly one of two operators wins each of 1,000 rounds", () => {
    const random = prng(4242);
    const { lease } = setup();
    const wins = { "op-a": 0, "op-b": 0 };
    const seenIds = new Set<string>();
    let now = 0;
    for (let round = 0; round < 1000; round++) {
      // each operator fires 1-3 acquires; all of them interleaved in a random order
      const attempts = [
        ...Array.from({ length: 1 + Math.floor(random() * 3) }, () => "op-a" as const),
        ...Array.from({ length: 1 + Math.floor(random() * 3) }, () => "op-b" as const),
      ];
      for (let i = attempts.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [attempts[i], attempts[j]] = [attempts[j], attempts[i]];
      }
      const freshGrants: { session: string; leaseId: string }[] = [];
      for (const session of attempts) {
        now += Math.floor(random() * 50); // well inside the TTL
        const result = lease.acquire(session, "operator", now);
        if (result.status === "granted") {
          if (result.fresh) freshGrants.push({ session, leaseId: result.lease.leaseId });
          else expect(result.lease.sessionId).toBe(session);
        } else {
          expect(result.reason).toBe("HELD_BY_OTHER");
          expect(result.holderSessionId).not.toBe(session);
        }
        expect(lease.holder).toBeDefined();
      }
      expect(freshGrants, `round ${round}`).toHaveLength(1);
      const [winner] = freshGrants;
      expect(winner.session).toBe(attempts[0]);
      expect(lease.holder?.sessionId).toBe(winner.session);
      expect(seenIds.has(winner.leaseId)).toBe(false);
      seenIds.add(winner.leaseId);
      wins[winner.session as "op-a" | "op-b"]++;

      // the round ends one of three ways; the lease is free again either way
      const end = random();
      if (end < 0.4) expect(lease.release(winner.session, now).status).toBe("released");
      else if (end < 0.7) expect(lease.holderDisconnected(winner.session, now).status).toBe("released");
      else {
        now = lease.expiresAt!;
        expect(lease.expire(now)?.leaseId).toBe(winner.leaseId);
      }
      expect(lease.holder).toBeUndefined();
      expect(reasonOf(lease.check(winner.session, winner.leaseId, now))).toMatch(/^(LEASE_ENDED|EXPIRED)$/);
    }
    expect(wins["op-a"] + wins["op-b"]).toBe(1000);
    // a random order favours neither
    expect(wins["op-a"]).toBeGreaterThan(400);
    expect(wins["op-b"]).toBeGreaterThan(400);
  });
});

/**
 * What the SafetyController tests share: a controller over a FakeDriver on a clock only
 * the test moves, and the gateway's messages handed to it encoded and decoded, as on the
 * wire. Controllers are stopped after each test (their watchdog poll is a real timer).
 */
import { afterEach, expect } from "vitest";
import { pino } from "pino";
import { SafetyController } from "../../../../devices/adapter/SafetyController.ts";
import { toProtoProfile } from "../../../../devices/adapter/mapping.ts";
import type { AdapterEvents } from "../../../../devices/adapter/types.ts";
import { decodeEnvelope, encodeEnvelope, tsunagi, type IEnvelope } from "../../../../proto/index.ts";
import { FakeAdapterClock } from "../../../fixtures/fakes/FakeAdapterClock.ts";
import { FakeDriver } from "../../../fixtures/fakes/FakeDriver.ts";

export const { Status } = tsunagi.v1.CommandAck;
export const DEVICE = "ex-1";
export const WINDOW_MS = 200;

/** Controllers made by each test, stopped after it (their watchdog poll is a real timer). */
const controllers: SafetyController[] = [];
afterEach(() => {
  for (const controller of controllers.splice(0)) controller.stop();
});

export function setup(driverOptions: { latencyBudgetMs?: number } = {}) {
  const driver = new FakeDriver({ watchdogMs: WINDOW_MS, ...driverOptions });
  driver.init();
  const clock = new FakeAdapterClock();
  const events: Array<{ event: keyof AdapterEvents; payload: unknown }> = [];
  let reports = 0;
  const safety = new SafetyController({
    deviceId: DEVICE, driver, profile: toProtoProfile(DEVICE, driver.profile(), 20, driver), clock, logger: pino({ level: "silent" }),
    events: { emit: (event, payload) => { events.push({ event, payload }); } },
    reportNow: () => { reports++; },
  });
  controllers.push(safety);
  return { driver, clock, safety, events, reports: () => reports };
}

export type Setup = ReturnType<typeof setup>;

/** Handles `fields` as the gateway would send them: encoded, then decoded. */
export function handle(s: Setup, fields: IEnvelope) {
  return s.safety.handle(decodeEnvelope(encodeEnvelope(fields)));
}

export function announce(s: Setup, leaseId: string, extra: Partial<tsunagi.v1.ILeaseState> = {}): void {
  handle(s, { correlationId: 0, leaseState: { deviceId: DEVICE, leaseId, ...extra } });
}

let nextCorrelation = 100;

/** A ControlCommand issued now with a 5 s deadline; returns its one ack and the envelope's correlation id. */
export function command(s: Setup, fields: Partial<tsunagi.v1.IControlCommand>) {
  const now = s.clock.serverNow();
  const correlationId = nextCorrelation++;
  const outcome = handle(s, { correlationId, controlCommand: { deviceId: DEVICE, issuedAtMs: now, deadlineMs: now + 5000, ...fields } })!;
  expect(outcome.replies).toHaveLength(1);
  return { ack: outcome.replies[0].commandAck!, correlationId, repliedTo: Number(outcome.replies[0].correlationId) };
}

export const statusOf = (s: Setup, fields: Partial<tsunagi.v1.IControlCommand>) => Status[command(s, fields).ack.status!];


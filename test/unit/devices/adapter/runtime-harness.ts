/**
 * What the AdapterRuntime tests share: a runtime against a scripted gateway
 * (test/fixtures/fakes/ScriptedGateway.ts), on a clock only the test moves, and helpers
 * that send the gateway's messages and wait for the adapter's answers.
 *
 * The simulated devices are stepped by hand (their real-time loops are not started), so
 * motion is deterministic. The watchdog is driven through the runtime's injected
 * monotonic clock: tests jump it forward instead of waiting, so no assertion depends on
 * how fast this machine is.
 *
 * @example
 *   afterEach(runCleanups);
 *   const s = await setup();
 *   await online(s);
 *   await lease(s, "L1");
 *   expect(statusName(await command(s, { leaseId: "L1", seq: 1, axes: [{ name: "boom", value: 0.4 }] }))).toBe("APPLIED");
 */
import { pino } from "pino";
import { AdapterRuntime, type AdapterEvents, type AdapterRuntimeOptions } from "../../../../devices/adapter/AdapterRuntime.ts";
import { SimExcavator, type Driver } from "../../../../devices/drivers/index.ts";
import { tsunagi } from "../../../../proto/index.ts";
import { FakeAdapterClock } from "../../../fixtures/fakes/FakeAdapterClock.ts";
import { ScriptedGateway, type ScriptedGatewayOptions } from "../../../fixtures/fakes/ScriptedGateway.ts";
import { waitFor } from "../../../fixtures/processes.ts";

export const { Status } = tsunagi.v1.CommandAck;
export const DEVICE = "ex-1";
export const SECRET = "a1".repeat(32);
export const WATCHDOG_MS = 2000;

/** What each test started, stopped by runCleanups (each file's afterEach) whatever happened. */
export const cleanups: (() => Promise<void> | void)[] = [];

/** Stops everything the test started, newest first. */
export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!();
}

/** What setup() started. */
export interface Setup {
  gateway: ScriptedGateway;
  runtime: AdapterRuntime;
  driver: Driver;
  /** The adapter's clock, moved only by the test (FakeAdapterClock). */
  clock: FakeAdapterClock;
}

/** A scripted gateway and a runtime pointed at it (not started), both stopped after the test. */
export async function setup(options: { driver?: Driver; runtime?: Partial<AdapterRuntimeOptions>; gateway?: Partial<ScriptedGatewayOptions> } = {}): Promise<Setup> {
  const gateway = await ScriptedGateway.start({ deviceId: DEVICE, secret: SECRET, token: "device-token", ...options.gateway });
  cleanups.push(() => gateway.close());
  const driver = options.driver ?? new SimExcavator({ watchdogMs: WATCHDOG_MS, latencyBudgetMs: 10_000 });
  driver.init();
  const clock = new FakeAdapterClock();
  const runtime = new AdapterRuntime({
    deviceId: DEVICE,
    driver,
    credential: { secret: SECRET },
    nodes: [gateway.httpUrl],
    adapterVersion: "1.2.3",
    backoff: { initialMs: 20, maxMs: 100 },
    clockSyncIntervalMs: 60_000,
    logger: pino({ level: "silent" }),
    now: clock.now,
    devMode: true, // the scripted gateway is plain http:// and ws:// on loopback
    ...options.runtime,
  });
  cleanups.push(() => runtime.stop());
  return { gateway, runtime, driver, clock };
}

/** The next `event` from the runtime (or the current state, for "online" when already there). */
export function nextEvent<K extends keyof AdapterEvents>(runtime: AdapterRuntime, event: K, timeoutMs = 5000): Promise<AdapterEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no "${event}" event within ${timeoutMs} ms (state ${runtime.state})`)); }, timeoutMs);
    const off = runtime.on(event, (payload) => { clearTimeout(timer); off(); resolve(payload); });
  });
}

/** Waits until `condition` holds; the bound (generous: a busy 2-core machine is slow) only catches a hang. */
export function waitUntil(condition: () => boolean, what: string, timeoutMs = 12_000): Promise<true> {
  return waitFor(() => condition() || undefined, timeoutMs, what, 5);
}

/** Starts the runtime and waits until it is welcomed. */
export async function online(s: Setup): Promise<void> {
  const event = nextEvent(s.runtime, "online");
  s.runtime.start();
  await event;
}

/** Correlation ids of the commands and actions the tests send. */
let nextCorrelation = 1000;

/**
 * Sends a ControlCommand (issued now on the adapter's server clock, deadline 5 s on)
 * and resolves with the ack that echoes its correlation id.
 */
export async function command(s: Setup, fields: Partial<tsunagi.v1.IControlCommand>): Promise<tsunagi.v1.CommandAck> {
  const correlationId = nextCorrelation++;
  const now = s.runtime.clock.serverNow();
  const since = s.gateway.mark();
  s.gateway.send({ correlationId, controlCommand: { deviceId: DEVICE, issuedAtMs: now, deadlineMs: now + 5000, ...fields } });
  const reply = await s.gateway.waitFor((e) => e.body === "commandAck" && Number(e.correlationId) === correlationId, since);
  return reply.commandAck as tsunagi.v1.CommandAck;
}

/** Sends a DeviceAction (issued now, deadline 5 s on) and resolves with its ActionResult. */
export async function action(s: Setup, fields: Partial<tsunagi.v1.IDeviceAction>): Promise<tsunagi.v1.ActionResult> {
  const correlationId = nextCorrelation++;
  const now = s.runtime.clock.serverNow();
  const since = s.gateway.mark();
  s.gateway.send({ correlationId, deviceAction: { deviceId: DEVICE, issuedAtMs: now, deadlineMs: now + 5000, ...fields } });
  const reply = await s.gateway.waitFor((e) => e.body === "actionResult" && Number(e.correlationId) === correlationId, since);
  return reply.actionResult as tsunagi.v1.ActionResult;
}

/** An ack's or action result's status, by name ("APPLIED"). */
export const statusName = (ack: { status: tsunagi.v1.CommandAck.Status }) => Status[ack.status];

/** Announces a lease and waits until the adapter has taken it. */
export async function lease(s: Setup, leaseId: string): Promise<void> {
  s.gateway.send({ correlationId: 0, leaseState: { deviceId: DEVICE, leaseId, holderSessionId: "op-1", holderRole: "operator" } });
  await waitUntil(() => (leaseId === "" ? s.runtime.safety.lease === undefined : s.runtime.safety.lease === leaseId) || s.runtime.safety.estopped, `lease ${leaseId}`);
}

/** Steps the simulated device by `ms` of simulated time, 10 ms at a time. */
export function run(driver: Driver, ms: number): void {
  for (let t = 0; t < ms; t += 10) driver.step(10);
}

/** One joint of the simulated excavator, as it is now. */
export const joint = (driver: Driver, name: string) => (driver as SimExcavator).joints().find((j) => j.name === name)!;

/** The next Telemetry from the adapter at or after `since` that matches. */
export async function telemetry(s: Setup, match: (t: tsunagi.v1.Telemetry) => boolean, since = 0): Promise<tsunagi.v1.Telemetry> {
  const envelope = await s.gateway.waitFor((e) => e.body === "telemetry" && match(e.telemetry as tsunagi.v1.Telemetry), since);
  return envelope.telemetry as tsunagi.v1.Telemetry;
}

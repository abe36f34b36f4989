/**
 * The adapter's link to a Tsunagi region: finds a gateway, connects, follows redirects
 * and reconnects, for as long as it runs. It hands every message of a welcomed link that
 * is not the link's own to its host, and says when the link is up and when it is lost; it
 * knows nothing of leases or commands (SafetyController does).
 *
 * Cycle (state: probing → connecting → authenticating → online → backoff → …):
 * 1. Probe `GET <node>/ping` on every configured node and take the nearest (RegionProbe);
 *    ask it `GET <node>/gateway` for the device endpoint ({ url, regionId, nodeId }),
 *    falling back to the next nearest if it cannot say (draining, down). Both requests
 *    are gatewayLookup.ts's.
 *    Outside dev mode only https:// nodes and wss:// endpoints are used (TLS, checked
 *    against `ca` or the system's CAs): a ws:// endpoint is refused as INSECURE_URL, and
 *    the next node tried.
 * 2. Open a DeviceChannel to that url: the handshake (challenge, hello, welcome) and the
 *    clock sync are the channel's. A welcome puts the link online (then the host's
 *    linkUp); a refusal is logged, kept as `lastError`, and retried with backoff
 *    (credentials may be fixed meanwhile).
 * 3. When the channel closes, the host hears it first (linkClosed: it stops the
 *    machine); then backoff with full jitter (backoff.ts) and a fresh probe.
 * 4. While the machine itself does not answer (deviceUnavailable(): a vehicle without
 *    heartbeats), the link is closed and no cycle starts (state "device-unavailable"):
 *    the room sees the device offline, ends its lease and says so. deviceAvailable()
 *    starts a cycle at once.
 * 5. A GatewayRedirect (the device's room is on another node of the region) is followed
 *    at once, without backoff or probe: the gateway closes, and the next cycle connects to
 *    the named gateway. Later cycles go there first until a connection there is not
 *    welcomed or its node drains.
 *
 * Anything malformed is logged and counted (here and in the channel); nothing the gateway
 * sends can throw out of it. While stopping, only an EStop still reaches the host.
 *
 * @example
 *   const connection = new GatewayConnection(options, {
 *     events, received: (envelope) => safety.handle(envelope) !== undefined,
 *     linkUp: () => flushTelemetry(), linkClosed: (loss) => safety.linkClosed(loss),
 *     failSafe: (reason) => safety.zeroMotion(reason),
 *   });
 *   connection.start();
 *   connection.send({ correlationId: 0, telemetry });   // false unless online
 *   await connection.stop();
 */
import type { Logger } from "pino";
import type { ClockSync } from "../../common/ClockSync.ts";
import { RegionProbe } from "../../common/RegionProbe.ts";
import type { SafeEmitter } from "../../common/SafeEmitter.ts";
import { DeviceCloseCode, ErrorCode, errorCodeName, isRetryable, type Envelope, type IEnvelope, type tsunagi } from "../../proto/index.ts";
import { DeviceChannel, type GatewayEndpoint } from "./DeviceChannel.ts";
import { backoffDelayMs, conflictDelayMs } from "./backoff.ts";
import { fetchGateway, measurePing } from "./gatewayLookup.ts";
import type { AdapterConflict, AdapterConnection, AdapterCounters, AdapterCredential, AdapterError, AdapterListeners, AdapterState } from "./types.ts";

/** While the machine is unavailable, how often the loop looks again (deviceAvailable() also wakes it), ms. */
const UNAVAILABLE_POLL_MS = 1000;

/** What the connection needs to know; AdapterRuntime fills it from its checked options. */
export interface GatewayConnectionOptions {
  deviceId: string;
  adapterVersion: string;
  /** The driver's name, for the hello. */
  driverName: string;
  credential: AdapterCredential;
  /** Node HTTP base URLs, without trailing "/". */
  nodes: readonly string[];
  /** The DeviceProfile sent first on every welcomed link. */
  profile: tsunagi.v1.IDeviceProfile;
  backoff: { initialMs: number; maxMs: number };
  /** The wait after a DEVICE_CONFLICT refusal or a 4409 replacement (between half of it and all of it), ms. */
  conflictBackoffMs: number;
  handshakeTimeoutMs: number;
  httpTimeoutMs: number;
  clockSyncIntervalMs: number;
  /** Jitter source in [0, 1). */
  random: () => number;
  /** PEM CA certificates the nodes' and gateways' certificates must chain to; absent: the system's. */
  ca: string | Buffer | undefined;
  /** Dev mode: plain http:// and ws:// are allowed (a loopback dev node). Never on a real machine. */
  devMode: boolean;
  /** Synced from the challenge and the clock pings. */
  clock: ClockSync;
  logger: Logger;
}

/** What the connection tells its owner. */
export interface GatewayConnectionHost {
  /** Where "state", "online", "offline" and "error" go. */
  readonly events: Pick<SafeEmitter<AdapterListeners>, "emit">;
  /** A message of a welcomed link that is not the link's own; false if nobody wanted it (counted unexpected). */
  received(envelope: Envelope): boolean;
  /** The link was welcomed (`welcome`); the profile and first clock pings are out. Runs before the "online" event. */
  linkUp(welcome: tsunagi.v1.IDeviceWelcome): void;
  /** An attempt's socket closed, welcomed or not. First, before anything else is done about it. */
  linkClosed(loss: LinkLoss): void;
  /** A bug on the link's side (a frame handler, the loop): the machine must stop to be safe. */
  failSafe(reason: string): void;
}

/** How a link ended. */
export interface LinkLoss {
  /** Whether the gateway had welcomed it. */
  welcomed: boolean;
  /** The WebSocket close code. */
  code: number;
  /** "connection closed (code 1006)", for logs and the "offline" event. */
  why: string;
}

/** The link's share of AdapterCounters (its channels count their malformed and unexpected frames there too). */
export type LinkCounters = Pick<AdapterCounters, "connectAttempts" | "reconnects" | "redirects" | "malformed" | "unexpected" | "refusedFrames" | "gatewayProofFailures" | "errorsReceived" | "errors">;

export class GatewayConnection {
  /** Identity, credential, nodes and timings. */
  private readonly options: GatewayConnectionOptions;
  /** The owner: safety, telemetry and events. */
  private readonly host: GatewayConnectionHost;
  /** Carries the device id on every line. */
  private readonly logger: Logger;
  /** Measures the nodes' /ping round trips. */
  private readonly probe: RegionProbe;
  /** Aborts HTTP requests when stopping. */
  private readonly aborter = new AbortController();
  /** Where the cycle is; "stopped" before start() and after stop(). */
  private currentState: AdapterState = "stopped";
  /** The connection attempt under way or online; undefined between attempts. */
  private channel: DeviceChannel | undefined;
  /** Whether this attempt's failure has been noted (lastError), so its close does not note it again. */
  private attemptFailureNoted = false;
  /** Failed cycles since the last welcome: the backoff exponent. */
  private failures = 0;
  /** The backoff wait under way. */
  private backoffTimer: NodeJS.Timeout | undefined;
  /** Ends the backoff wait early (stop()). */
  private wakeFromBackoff: (() => void) | undefined;
  /** Next correlation id for hellos and pings; never 0. */
  private nextCorrelationId = 1;
  /** stop() was called: nothing reconnects, nothing new starts. */
  private stopping = false;
  /** Why the machine is unavailable (deviceUnavailable()); undefined while it answers. */
  private unavailableReason: string | undefined;
  /** Settles when the connection loop has exited. */
  private loopDone: Promise<void> = Promise.resolve();
  /** See `lastError`. */
  private lastErrorValue: AdapterError | undefined;
  /**
   * Where a GatewayRedirect sent this adapter: tried first on every cycle, until a
   * connection there is not welcomed (or that node drains), then back to probing.
   */
  private redirectTarget: { node: string; gateway: GatewayEndpoint } | undefined;
  /** A redirect just arrived: the next cycle starts at once, with no backoff. */
  private redirectPending = false;
  /** See `conflict`. */
  private conflictValue: AdapterConflict | undefined;
  /** A conflict was just seen: the next wait is the conflict backoff. */
  private conflictPending = false;
  /** See `connection`. */
  private connectionValue: AdapterConnection | undefined;
  /** Welcomes so far (the first is not a reconnect). */
  private welcomes = 0;
  /** See `counters`; the channels count their malformed and unexpected frames here too. */
  private readonly counterValues: LinkCounters = {
    connectAttempts: 0, reconnects: 0, redirects: 0, malformed: 0, unexpected: 0, refusedFrames: 0, gatewayProofFailures: 0, errorsReceived: 0, errors: {},
  };

  constructor(options: GatewayConnectionOptions, host: GatewayConnectionHost) {
    this.options = options;
    this.host = host;
    this.logger = options.logger;
    this.probe = new RegionProbe({
      regions: options.nodes.map((url) => ({ id: url, url })),
      timeoutMs: options.httpTimeoutMs,
      // stop() aborts a probe under way instead of waiting out its timeouts
      measure: (region, signal) => measurePing(region.url, { ca: options.ca, signal: AbortSignal.any([signal, this.aborter.signal]) }),
    });
  }

  get state(): AdapterState {
    return this.currentState;
  }

  /** Where the link is; undefined unless online. */
  get connection(): AdapterConnection | undefined {
    return this.connectionValue && { ...this.connectionValue };
  }

  /** The last error (a refused hello, an unreachable region, a gateway Error); undefined if none yet. */
  get lastError(): AdapterError | undefined {
    return this.lastErrorValue && { ...this.lastErrorValue };
  }

  /** Another adapter runs as this device (refused or replaced since the last welcome); undefined when none is known. */
  get conflict(): AdapterConflict | undefined {
    return this.conflictValue && { ...this.conflictValue };
  }

  /** A copy of the counters. */
  get counters(): LinkCounters {
    return { ...this.counterValues, errors: { ...this.counterValues.errors } };
  }

  /** Whether send() can send: welcomed, socket open. */
  get canSend(): boolean {
    return this.channel?.canSend ?? false;
  }

  /** Bytes written to the socket and not yet on the wire (0 without one). */
  get bufferedBytes(): number {
    return this.channel?.bufferedBytes ?? 0;
  }

  /** Starts the cycle; it runs until stop(). */
  start(): void {
    this.loopDone = this.connectLoop().catch((error) => {
      // the loop catches everything itself; reaching here is a bug, and the device must stop
      this.logger.error({ err: error }, "adapter connection loop failed; motion zeroed");
      this.host.failSafe("the connection loop failed");
    });
  }

  /** Sends on the welcomed link; false when there is none. */
  send(envelope: IEnvelope): boolean {
    return this.channel?.send(envelope) ?? false;
  }

  /** Closes the link and ends the cycle; resolves once both are done. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.backoffTimer);
    this.wakeFromBackoff?.();
    this.aborter.abort(new Error("adapter stopping"));
    await this.channel?.stop();
    await this.loopDone;
    this.setState("stopped");
  }

  /** The machine stopped answering: close the link and stay off the gateway until deviceAvailable(). */
  deviceUnavailable(reason: string): void {
    if (this.unavailableReason !== undefined || this.stopping) return;
    this.unavailableReason = reason;
    this.logger.warn({ reason }, `device unavailable (${reason}): going offline until it answers again`);
    this.wakeFromBackoff?.();
    void this.channel?.stop(`device unavailable: ${reason}`);
  }

  /** The machine answers again: connect at once. */
  deviceAvailable(): void {
    if (this.unavailableReason === undefined) return;
    this.unavailableReason = undefined;
    this.failures = 0;
    this.logger.info("device available again: connecting");
    this.wakeFromBackoff?.();
  }

  // --- the cycle -----------------------------------------------------------------------

  private async connectLoop(): Promise<void> {
    while (!this.stopping) {
      if (this.unavailableReason !== undefined) {
        this.setState("device-unavailable");
        await this.sleep(UNAVAILABLE_POLL_MS);
        continue;
      }
      try {
        await this.connectOnce();
      } catch (error) {
        if (this.stopping) break;
        this.logger.error({ err: error }, "adapter connection attempt failed unexpectedly");
      }
      if (this.stopping) break;
      if (this.unavailableReason !== undefined) continue;
      if (this.redirectPending) {
        this.redirectPending = false;
        this.failures = 0;
        continue;
      }
      const delayMs = this.conflictPending ? conflictDelayMs(this.options.conflictBackoffMs, this.options.random)
        : backoffDelayMs(this.failures, this.options.backoff.initialMs, this.options.backoff.maxMs, this.options.random);
      this.conflictPending = false;
      this.failures++;
      this.setState("backoff");
      this.logger.debug({ delayMs }, `reconnecting in ${delayMs} ms`);
      await this.sleep(delayMs);
    }
  }

  /** One cycle: probe, pick a gateway, connect; resolves when that connection is over. */
  private async connectOnce(): Promise<void> {
    this.counterValues.connectAttempts++;
    const target = this.redirectTarget;
    if (target) {
      const welcomed = await this.connect(target.node, target.gateway);
      if (!welcomed && this.redirectTarget === target && !this.redirectPending) {
        this.redirectTarget = undefined;
        this.logger.warn({ url: target.gateway.url }, `the gateway this adapter was sent to (${target.gateway.url}) did not take it; picking a node by round trip again`);
      }
      return;
    }
    this.setState("probing");
    const results = await this.probe.reprobe();
    if (this.stopping) return;
    const reachable = results.filter((result) => Number.isFinite(result.rttMs) && !result.error);
    if (reachable.length === 0) {
      const reasons = results.map((result) => result.error?.message ?? `${result.url}: no answer`).join("; ");
      this.noteError({ code: ErrorCode.REGION_UNAVAILABLE, phase: "probe", message: `no node answered /ping (${reasons})` });
      return;
    }
    for (const node of reachable) {
      if (this.stopping) return;
      let gateway: GatewayEndpoint;
      try {
        gateway = await fetchGateway(node.url, { ca: this.options.ca, signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.options.httpTimeoutMs)]) });
      } catch (error) {
        if (this.stopping) return;
        this.noteError({ code: ErrorCode.REGION_UNAVAILABLE, phase: "gateway", message: `${node.url}/gateway: ${(error as Error).message}` });
        continue;
      }
      if (this.stopping) return;
      if ("certificate" in this.options.credential) {
        // Certificate mode connects to the node's certificate listener, never its secret one.
        if (!gateway.certUrl) {
          this.noteError({ phase: "gateway", codeName: "NO_CERTIFICATE_LISTENER", message: `${node.url}/gateway named no certUrl: the node runs no certificate listener (gateway.deviceCaFile)` });
          continue;
        }
        gateway = { ...gateway, url: gateway.certUrl };
      }
      if (!this.options.devMode && !gateway.url.startsWith("wss://")) {
        this.noteError({ phase: "gateway", codeName: "INSECURE_URL", message: `${node.url}/gateway named ${gateway.url}: outside dev mode the device channel is TLS (wss://) only` });
        continue;
      }
      await this.connect(node.url, gateway);
      return;
    }
  }

  /** Opens a DeviceChannel and runs it; resolves when it has closed, with whether it was welcomed. */
  private connect(node: string, gateway: GatewayEndpoint): Promise<boolean> {
    this.setState("connecting");
    this.attemptFailureNoted = false;
    return new Promise<boolean>((resolve) => {
      let channel: DeviceChannel;
      try {
        channel = new DeviceChannel({ ...this.options, node, gateway, nextCorrelationId: () => this.correlationId() }, {
          counters: this.counterValues,
          opened: () => { if (this.channel === channel && !this.stopping) this.setState("authenticating"); },
          welcomed: (welcome) => this.welcome(channel, welcome),
          received: (envelope) => this.received(channel, envelope),
          refused: (error) => this.noteGatewayError(error, "handshake"),
          failed: (phase, codeName, message) => this.noteError({ phase, codeName, message }),
          failSafe: (reason) => this.host.failSafe(reason),
          closed: (code, reason) => {
            this.onClosed(channel, code, reason);
            resolve(channel.welcomed);
          },
        });
      } catch (error) {
        this.noteError({ phase: "connect", codeName: "CONNECTION_FAILED", message: `${gateway.url}: ${(error as Error).message}` });
        resolve(false);
        return;
      }
      this.channel = channel;
    });
  }

  private welcome(channel: DeviceChannel, welcome: tsunagi.v1.IDeviceWelcome): void {
    const { deviceId } = this.options;
    this.failures = 0;
    this.conflictValue = undefined;
    this.welcomes++;
    if (this.welcomes > 1) this.counterValues.reconnects++;
    if (welcome.deviceId && welcome.deviceId !== deviceId) {
      this.logger.warn({ welcomedAs: welcome.deviceId }, `the gateway welcomed device "${welcome.deviceId.slice(0, 64)}", expected "${deviceId}"`);
    }
    const regionId = welcome.regionId || channel.gateway.regionId;
    const nodeId = welcome.nodeId || channel.gateway.nodeId;
    const connection = { node: channel.node, url: channel.gateway.url, regionId, nodeId };
    this.connectionValue = connection;
    this.setState("online");
    this.host.linkUp(welcome);
    this.logger.info({ regionId, nodeId, url: channel.gateway.url }, `adapter ${deviceId} online via ${regionId}/${nodeId}`);
    this.host.events.emit("online", { ...connection });
  }

  /** A message of the welcomed link beyond the channel's own: redirects and Errors here, the rest to the host. */
  private received(channel: DeviceChannel, envelope: Envelope): void {
    switch (envelope.body) {
      case "gatewayRedirect": this.onRedirect(channel, envelope.gatewayRedirect!); return;
      case "error": this.noteGatewayError(envelope.error!, "online"); return;
      default:
        if (!this.host.received(envelope)) this.unexpected(`${envelope.body} on an online device channel`);
    }
  }

  /**
   * The device's room is on another node: the gateway closes this connection next (the
   * close stops the machine, as every close does), and the next cycle connects there.
   */
  private onRedirect(channel: DeviceChannel, redirect: tsunagi.v1.IGatewayRedirect): void {
    const url = redirect.url ?? "";
    if (!(this.options.devMode ? /^wss?:\/\/[^\s]{1,2000}$/ : /^wss:\/\/[^\s]{1,2000}$/).test(url)) {
      this.unexpected(`a GatewayRedirect to ${JSON.stringify(url.slice(0, 200))}, not a wss:// url${this.options.devMode ? " or ws:// url" : " (outside dev mode the device channel is TLS only)"}; staying`);
      return;
    }
    const nodeId = redirect.nodeId ?? "";
    this.redirectTarget = { node: channel.node, gateway: { url, regionId: redirect.regionId ?? "", nodeId } };
    this.redirectPending = true;
    this.counterValues.redirects++;
    this.logger.info({ url, nodeId, reason: redirect.reason }, `sent to node ${nodeId || url}${redirect.reason ? `: ${redirect.reason}` : ""}`);
  }

  private onClosed(channel: DeviceChannel, code: number, reason: string): void {
    if (this.channel === channel) this.channel = undefined;
    const why = `connection closed (code ${code}${reason ? `, ${reason}` : ""})`;
    // The node may be gone, and a new node has no lease for us: the host stops the machine first.
    this.host.linkClosed({ welcomed: channel.welcomed, code, why });
    if (code === DeviceCloseCode.REPLACED && !this.stopping) {
      this.noteConflict(`another adapter connected as device ${this.options.deviceId} and took over (close 4409); the machine is stopped here`);
    } else if (code === DeviceCloseCode.CONFLICT && !this.conflictPending && !this.stopping) {
      this.noteConflict(`refused: another adapter is connected as device ${this.options.deviceId} (close 4410)`);
    }
    if (!channel.welcomed) {
      if (!this.attemptFailureNoted && !this.stopping) {
        this.noteError({ phase: "handshake", codeName: "CONNECTION_CLOSED", message: `${channel.gateway.url} closed the connection before the welcome (code ${code}${reason ? `, ${reason}` : ""})` });
      }
      return;
    }
    this.connectionValue = undefined;
    // A node that drains sends its adapters elsewhere: not back to it.
    if (code === DeviceCloseCode.DRAINING && this.redirectTarget?.gateway.url === channel.gateway.url) this.redirectTarget = undefined;
    if (!this.stopping) this.setState("backoff"); // the loop's backoff follows at once
    this.host.events.emit("offline", { reason: why, code });
  }

  // --- plumbing ------------------------------------------------------------------------

  /** An Error envelope from the gateway: counted by code, then noted as `lastError`. */
  private noteGatewayError(error: tsunagi.v1.IError, phase: "handshake" | "online"): void {
    const code = error.code ?? 0;
    this.counterValues.errorsReceived++;
    const name = errorCodeName(code);
    this.counterValues.errors[name] = (this.counterValues.errors[name] ?? 0) + 1;
    if (code === ErrorCode.DEVICE_CONFLICT) { this.noteConflict(error.message ?? "another adapter is connected as this device", phase); return; }
    this.noteError({ code, phase, message: error.message ?? "" });
  }

  /**
   * Another adapter runs as this device (refused DEVICE_CONFLICT, or replaced: close
   * 4409). The machine is already stopped (the link closed, or was never welcomed); this
   * adapter now retries only after the conflict backoff, and says why in its status so a
   * technician stops one of the two.
   */
  private noteConflict(message: string, phase: AdapterError["phase"] = "online"): void {
    this.conflictPending = true;
    this.conflictValue = { since: this.conflictValue?.since ?? Date.now(), count: (this.conflictValue?.count ?? 0) + 1, message };
    this.noteError({ code: ErrorCode.DEVICE_CONFLICT, phase, message: `${message}; retrying in ${Math.round(this.options.conflictBackoffMs / 1000)} s at most` });
  }

  private noteError(error: Omit<AdapterError, "at" | "codeName"> & { codeName?: string }): void {
    const full: AdapterError = {
      ...error,
      codeName: error.codeName ?? (error.code !== undefined ? errorCodeName(error.code) : "CONNECTION_FAILED"),
      at: Date.now(),
    };
    this.lastErrorValue = full;
    if (this.channel && !this.channel.welcomed) this.attemptFailureNoted = true;
    const refusal = full.phase === "handshake" && full.code !== undefined;
    const fields = { code: full.codeName, phase: full.phase, retryable: full.code !== undefined ? isRetryable(full.code) : true };
    if (refusal) this.logger.error(fields, `gateway refused device ${this.options.deviceId}: ${full.codeName}: ${full.message} (retrying with backoff)`);
    else this.logger.warn(fields, `${full.phase}: ${full.codeName}: ${full.message}`);
    this.host.events.emit("error", { ...full });
  }

  private unexpected(what: string): void {
    this.counterValues.unexpected++;
    this.logger.warn(`ignored ${what}`);
  }

  private setState(state: AdapterState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.host.events.emit("state", state);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(this.backoffTimer);
        this.backoffTimer = undefined;
        this.wakeFromBackoff = undefined;
        resolve();
      };
      this.wakeFromBackoff = wake;
      this.backoffTimer = setTimeout(wake, ms);
    });
  }

  private correlationId(): number {
    const id = this.nextCorrelationId;
    this.nextCorrelationId = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    return id;
  }
}

/**
 * Bench child: the device side of the control bench. N lightweight edge adapters, one
 * raw `ws` socket each and no HAL. On the node path each answers the gateway's
 * DeviceChallenge with a signed challenge, checks the gateway's proof, seals and opens
 * every frame after the welcome (proto/deviceAuth.ts, as a real adapter does: its cost
 * is part of what is measured) and announces its DeviceProfile; on the relay path it
 * just connects. Then, on both paths alike: every ControlCommand is acked
 * APPLIED at once (same correlation id) and its latency recorded as receive time minus
 * issued_at_ms (both wallClockMs on this machine); the first arrival of each EStop (by
 * its raised_at_ms) since the last `estops` call is timestamped; and each device
 * sends Telemetry at telemetryHz, as a real one would.
 * Argument: DeviceLoadConfig. Ready (every adapter accepted and its profile sent).
 * Calls: startWindow, stopWindow → DeviceWindow, estops → EStopsReceived (and forgets them).
 */
import { WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, errorCodeName, ProtocolError, tsunagi, type Envelope, type IEnvelope } from "../../proto/index.ts";
import { ChannelSeal, isGatewayProof, newNonce, proveChallenge, type ChannelNonces } from "../../proto/deviceAuth.ts";
import { axisName, benchProfile, telemetryHz, type DeviceLoadConfig, type DeviceWindow, type EStopsReceived } from "./control-protocol.ts";
import { LatencyWindow, wallClockMs } from "./measure.ts";
import { countInto } from "./tasks.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as DeviceLoadConfig;

/** How long an adapter may take to connect and be accepted. */
const connectTimeoutMs = 30_000;
/** Correlation id of each adapter's DeviceHello (one per connection). */
const helloCorrelationId = 1;

const latencyWindow = new LatencyWindow();
let connectionsLost = 0;
const errors: Record<string, number> = {};
let estops: EStopsReceived = {};

class BenchAdapter {
  private socket!: WebSocket;
  private up = false;
  /** Simulated axis state, for telemetry. */
  private velocity = 0;
  private position = 0;
  private estopped = false;
  private lastLeaseId = "";
  private lastAppliedSeq = 0;
  /** Node path, once the hello is out: the connection's nonces and seal. */
  private nonces: ChannelNonces | undefined;
  private seal: ChannelSeal | undefined;

  constructor(private readonly deviceId: string, private readonly deviceSecret: string | undefined, private readonly index: number) {}

  /** Resolves once the adapter is accepted (node path) or connected (relay path) and its profile sent. */
  connect(): Promise<void> {
    const url = config.path === "node" ? config.url : `${config.url}?id=${encodeURIComponent(this.deviceId)}`;
    this.socket = new WebSocket(url, { perMessageDeflate: false });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`${this.deviceId}: not accepted within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      const fail = (error: Error) => { clearTimeout(timer); reject(error); };
      const accepted = () => {
        clearTimeout(timer);
        this.up = true;
        this.write({ correlationId: 0, deviceProfile: benchProfile(this.deviceId, config.hz) });
        this.startTelemetry();
        resolve();
      };
      this.socket.once("error", (error) => fail(new Error(`${this.deviceId}: ${error.message}`)));
      this.socket.on("close", (code, reason) => {
        if (this.up) {
          connectionsLost++;
          process.stderr.write(`${this.deviceId}: connection closed (${code} ${reason.toString()})\n`);
        } else {
          fail(new Error(`${this.deviceId}: connection closed before it was accepted (${code} ${reason.toString()})`));
        }
        this.up = false;
      });
      if (config.path === "relay") this.socket.once("open", accepted);
      this.socket.on("message", (data: Buffer) => {
        let envelope: Envelope;
        try {
          let bytes: Uint8Array = data;
          if (this.seal) {
            const opened = this.seal.open(bytes);
            // before the welcome a refusal comes unsealed
            if (opened.refused === undefined) bytes = opened.envelope;
            else if (this.up) { countInto(errors, `refused frame (${opened.refused})`); return; }
          }
          envelope = decodeEnvelope(bytes);
        } catch (error) {
          countInto(errors, `undecodable (${errorCodeName((error as ProtocolError).code)})`);
          return;
        }
        if (this.up) { this.receive(envelope); return; }
        // Handshake (node path): challenge → hello → welcome | error.
        if (envelope.body === "deviceChallenge") this.answerChallenge(envelope.deviceChallenge!);
        else if (envelope.body === "deviceWelcome") {
          if (isGatewayProof(this.deviceSecret ?? "", this.deviceId, this.nonces!, envelope.deviceWelcome!.gatewayProof ?? "")) accepted();
          else fail(new Error(`${this.deviceId}: the gateway did not prove it knows the device secret`));
        }
        else if (envelope.body === "error") fail(new Error(`${this.deviceId} refused: ${describeError(envelope.error!)}`));
      });
    });
  }

  private answerChallenge(challenge: tsunagi.v1.IDeviceChallenge) {
    const nonce = challenge.nonce ?? "";
    const serverTimeMs = Number(challenge.serverTimeMs ?? 0);
    const signature = proveChallenge(this.deviceSecret ?? "", this.deviceId, { nonce, serverTimeMs });
    const adapterNonce = newNonce();
    this.write({
      correlationId: helloCorrelationId,
      deviceHello: { deviceId: this.deviceId, adapterVersion: "1.0.0-bench", driver: "bench", signedChallenge: { nonce, signature }, adapterNonce },
    });
    this.nonces = { gatewayNonce: nonce, adapterNonce };
    this.seal = ChannelSeal.forAdapter(this.deviceSecret ?? "", this.deviceId, this.nonces);
  }

  private receive(envelope: Envelope) {
    switch (envelope.body) {
      case "controlCommand": this.apply(envelope); return;
      case "estop": {
        const receivedAtMs = wallClockMs();
        this.estopped = true;
        this.velocity = 0;
        // The first arrival of each e-stop (by raised_at_ms): a late one of an earlier round
        // must not hide this round's.
        const raisedAtMs = envelope.estop!.raisedAtMs ?? 0;
        if (estops[this.deviceId]?.raisedAtMs !== raisedAtMs) estops[this.deviceId] = { receivedAtMs, raisedAtMs };
        return;
      }
      case "reset":
        this.estopped = false;
        return;
      case "leaseState":
        // An ended lease zeroes motion (device.proto, LeaseState).
        if (!envelope.leaseState!.leaseId) this.velocity = 0;
        return;
      case "error": {
        const name = errorCodeName(envelope.error!.code ?? 0);
        if (errors[name] === undefined) process.stderr.write(`${this.deviceId}: Error envelope ${describeError(envelope.error!)}\n`);
        countInto(errors, name);
        return;
      }
      default:
        // Heartbeat, ClockSyncPong, Pong, telemetry echoes of the relay: nothing to do.
        return;
    }
  }

  /** Acks the command APPLIED, echoing its correlation id, and records its latency. */
  private apply(envelope: Envelope) {
    const receivedAtMs = wallClockMs();
    const command = envelope.controlCommand!;
    const issuedAtMs = command.issuedAtMs ?? 0;
    latencyWindow.record(receivedAtMs - issuedAtMs);
    const value = command.axes?.find((axis) => axis.name === axisName)?.value ?? 0;
    this.velocity = value;
    this.lastLeaseId = command.leaseId ?? "";
    this.lastAppliedSeq = Number(command.seq ?? 0);
    const appliedAtMs = wallClockMs();
    this.write({
      correlationId: envelope.correlationId,
      commandAck: {
        deviceId: this.deviceId, leaseId: command.leaseId, seq: command.seq,
        status: tsunagi.v1.CommandAck.Status.APPLIED, origin: tsunagi.v1.CommandAck.Origin.ADAPTER,
        issuedAtMs, receivedAtMs, appliedAtMs, oneWayLatencyMs: appliedAtMs - issuedAtMs,
      },
    });
  }

  private startTelemetry() {
    const periodMs = 1000 / telemetryHz;
    // Spread the devices' telemetry evenly over one period, as independent devices would be.
    setTimeout(() => {
      const timer = setInterval(() => {
        if (!this.up) { clearInterval(timer); return; }
        this.position += this.velocity / telemetryHz;
        this.write({
          correlationId: 0,
          telemetry: {
            deviceId: this.deviceId, sampledAtMs: wallClockMs(),
            joints: [{ name: axisName, position: this.position, velocity: this.velocity }],
            estopped: this.estopped, leaseId: this.lastLeaseId, lastAppliedSeq: this.lastAppliedSeq,
          },
        });
      }, periodMs);
    }, (this.index * periodMs) / config.devices.length);
  }

  private write(envelope: IEnvelope) {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    const bytes = encodeEnvelope(envelope);
    this.socket.send(this.seal && this.up ? this.seal.seal(bytes) : bytes);
  }
}

function describeError(error: tsunagi.v1.IError): string {
  return `[${error.code} ${errorCodeName(error.code ?? 0)}] ${error.message}`;
}

function startWindow(): void {
  latencyWindow.start();
}

function stopWindow(): DeviceWindow {
  return { ...latencyWindow.stop(), connectionsLost, errors };
}

const adapters = config.devices.map(({ deviceId, deviceSecret }, index) => new BenchAdapter(deviceId, deviceSecret, index));
await Promise.all(adapters.map((adapter) => adapter.connect()));

function takeEStops(): EStopsReceived {
  const taken = estops;
  estops = {};
  return taken;
}

serveParent({ startWindow, stopWindow, estops: takeEStops });

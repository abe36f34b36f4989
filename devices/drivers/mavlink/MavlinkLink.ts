/**
 * The MAVLink link to one vehicle over UDP: packets in, decoded by node-mavlink (framing,
 * CRC and the message registries are the library's), and messages out as MAVLink v2
 * from the GCS's system and component ids, with the packet sequence counting up.
 *
 * Every datagram is split on its own (a fresh MavLinkPacketSplitter), so a corrupt
 * datagram costs only itself, never the next one. Packets from other systems than the
 * vehicle (another GCS, a second vehicle on the same network) are counted and ignored.
 *
 * `udpin` learns where the vehicle is from its packets and answers there; `udpout`
 * sends to the configured address from the start.
 *
 * @example
 *   const link = await MavlinkLink.open({ endpoint: parseMavlinkEndpoint("udpout:127.0.0.1:14555"),
 *     vehicle: { systemId: 1, componentId: 1 }, gcs: { systemId: 255, componentId: 190 } });
 *   link.onMessage((message, header) => { if (message instanceof minimal.Heartbeat) ... });
 *   link.send(new minimal.Heartbeat());
 *   await link.close();
 */
import { createSocket, type Socket } from "node:dgram";
import { ardupilotmega, common, minimal, MavLinkPacketParser, MavLinkPacketSplitter, MavLinkProtocolV2, type MavLinkData, type MavLinkDataConstructor, type MavLinkPacket } from "node-mavlink";
import type { MavlinkEndpoint } from "./endpoint.ts";

/** Every message class the driver may meet, by message id. */
const REGISTRY: Record<number, MavLinkDataConstructor<MavLinkData>> = { ...minimal.REGISTRY, ...common.REGISTRY, ...ardupilotmega.REGISTRY } as never;

/** A MAVLink system and component. */
export interface MavlinkIds {
  systemId: number;
  componentId: number;
}

export interface MavlinkLinkOptions {
  endpoint: MavlinkEndpoint;
  /** Whose packets count; others are ignored. */
  vehicle: MavlinkIds;
  /** Who this side is on the link. */
  gcs: MavlinkIds;
}

export interface MavlinkLinkCounters {
  received: number;
  sent: number;
  /** Datagrams or packets that did not decode (bad CRC, truncated, garbage). */
  malformed: number;
  /** Well-formed packets from another system than the vehicle's. */
  foreign: number;
  /** Packets of a message id no registry knows. */
  unknown: number;
  sendErrors: number;
}

export type MessageListener = (message: MavLinkData, header: MavLinkPacket["header"]) => void;

export class MavlinkLink {
  readonly counters: MavlinkLinkCounters = { received: 0, sent: 0, malformed: 0, foreign: 0, unknown: 0, sendErrors: 0 };
  private readonly options: MavlinkLinkOptions;
  private readonly socket: Socket;
  private readonly protocol: MavLinkProtocolV2;
  private readonly parser = new MavLinkPacketParser();
  private readonly listeners = new Set<MessageListener>();
  /** Where packets go: the configured address (udpout), or the vehicle's as learnt (udpin). */
  private peer: { address: string; port: number } | undefined;
  private sequence = 0;
  private closed = false;

  private constructor(options: MavlinkLinkOptions, socket: Socket) {
    this.options = options;
    this.socket = socket;
    this.protocol = new MavLinkProtocolV2(options.gcs.systemId, options.gcs.componentId);
    if (options.endpoint.mode === "udpout") this.peer = { address: options.endpoint.host, port: options.endpoint.port };
    this.parser.on("data", (packet: MavLinkPacket) => this.packet(packet));
    this.parser.on("error", () => { this.counters.malformed++; });
    socket.on("message", (datagram, from) => this.datagram(datagram, from));
    // a send to a closed port is reported here (ECONNREFUSED on some systems): counted, never fatal
    socket.on("error", () => { this.counters.sendErrors++; });
  }

  /** Opens the socket: bound to the endpoint (udpin) or to a free port (udpout). */
  static async open(options: MavlinkLinkOptions): Promise<MavlinkLink> {
    const { endpoint } = options;
    const socket = createSocket(endpoint.host.includes(":") ? "udp6" : "udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      const bindHost = endpoint.mode === "udpin" ? endpoint.host : undefined;
      socket.bind({ port: endpoint.mode === "udpin" ? endpoint.port : 0, address: bindHost, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new MavlinkLink(options, socket);
  }

  /** The local address the link listens on. */
  get localAddress(): { address: string; port: number } {
    return this.socket.address();
  }

  /** Whether the link knows where to send (always for udpout; after the vehicle's first packet for udpin). */
  get hasPeer(): boolean {
    return this.peer !== undefined;
  }

  onMessage(listener: MessageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends one message; false when there is nowhere to send yet or the link is closed. Never throws. */
  send(message: MavLinkData): boolean {
    if (this.closed || !this.peer) return false;
    let bytes: Buffer;
    try {
      bytes = this.protocol.serialize(message, this.sequence);
    } catch {
      this.counters.sendErrors++;
      return false;
    }
    this.sequence = (this.sequence + 1) & 0xff;
    this.socket.send(bytes, this.peer.port, this.peer.address, (error) => {
      if (error) this.counters.sendErrors++;
    });
    this.counters.sent++;
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private datagram(datagram: Buffer, from: { address: string; port: number }): void {
    if (this.closed) return;
    const splitter = new MavLinkPacketSplitter();
    let packets = 0;
    splitter.on("data", (chunk) => {
      packets++;
      this.parser.write(chunk);
    });
    splitter.on("error", () => { this.counters.malformed++; });
    // the splitter works synchronously: its counts are final once end() returns
    splitter.end(datagram);
    this.counters.malformed += splitter.invalidPackages;
    this.counters.unknown += splitter.unknownPackagesCount;
    if (packets === 0 && splitter.invalidPackages === 0 && splitter.unknownPackagesCount === 0) this.counters.malformed++;
    if (packets > 0 && this.options.endpoint.mode === "udpin") this.learnPeer(from);
  }

  private learnPeer(from: { address: string; port: number }): void {
    if (this.peer?.address === from.address && this.peer.port === from.port) return;
    this.peer = { address: from.address, port: from.port };
  }

  private packet(packet: MavLinkPacket): void {
    const { header } = packet;
    if (header.sysid !== this.options.vehicle.systemId) {
      this.counters.foreign++;
      return;
    }
    const type = REGISTRY[header.msgid];
    if (!type) {
      this.counters.unknown++;
      return;
    }
    let message: MavLinkData;
    try {
      message = packet.protocol.data(packet.payload, type);
    } catch {
      this.counters.malformed++;
      return;
    }
    this.counters.received++;
    for (const listener of this.listeners) {
      try {
        listener(message, header);
      } catch {
        // a listener's bug must not stop the others hearing the vehicle
      }
    }
  }
}

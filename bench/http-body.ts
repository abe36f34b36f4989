/**
 * HTTP body bench: uploads of `bodyKib` KiB sent chunked in `pieceBytes` pieces, one
 * after another, to the stock uWS transport's request handler (the body joined on every
 * chunk) and to the node's HTTP edge (counted per chunk, joined once), side by side in
 * one run. Reports each server's CPU per upload and their ratio (edge / stock).
 */
import net from "node:net";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import type { BodyHandling } from "./lib/body-server.ts";
import { BenchChild } from "./lib/child-process.ts";
import { log, procCpuMs, round } from "./lib/measure.ts";

export const httpBodyBenchOptions = z.object({
  uploads: z.coerce.number().int().min(1).default(5),
  bodyKib: z.coerce.number().int().min(1).max(4096).default(2048),
  pieceBytes: z.coerce.number().int().min(16).max(65536).default(1024),
});

export type HttpBodyBenchOptions = z.output<typeof httpBodyBenchOptions>;

export interface BodyFigures {
  /** Server CPU per upload, ms. */
  cpuMsPerUpload: number;
  /** Wall time per upload, ms. */
  wallMsPerUpload: number;
}

export interface HttpBodyBenchResult {
  bench: "http-body";
  uploads: number;
  bodyKib: number;
  pieceBytes: number;
  stock: BodyFigures;
  edge: BodyFigures;
  /** Edge CPU per upload / stock CPU per upload. */
  cpuRatio: number;
}

export async function runHttpBodyBench(options: Partial<HttpBodyBenchOptions> = {}, signal?: AbortSignal): Promise<HttpBodyBenchResult> {
  const resolved = httpBodyBenchOptions.parse(options);
  const stock = await measure("stock", resolved, signal);
  const edge = await measure("edge", resolved, signal);
  if (stock.cpuMsPerUpload === 0) throw new Error("the stock handler used no measurable CPU (/proc counts in ticks): raise --uploads or --body-kib");
  return { bench: "http-body", ...resolved, stock, edge, cpuRatio: round(edge.cpuMsPerUpload / stock.cpuMsPerUpload, 3) };
}

async function measure(handling: BodyHandling, options: HttpBodyBenchOptions, signal?: AbortSignal): Promise<BodyFigures> {
  const { child, ready } = await BenchChild.start<{ port: number }>(`${handling} server`, "bench/lib/body-server.ts", handling, signal);
  try {
    const cpuAtStart = await procCpuMs(child.pid);
    const startedAt = performance.now();
    for (let i = 0; i < options.uploads; i++) {
      signal?.throwIfAborted();
      const answer = await upload(ready.port, options.bodyKib * 1024, options.pieceBytes);
      if (!answer.startsWith("HTTP/1.1 200")) throw new Error(`${handling}: upload ${i} answered ${answer.slice(0, 80)}`);
    }
    const wallMs = performance.now() - startedAt;
    const cpuMs = (await procCpuMs(child.pid)) - cpuAtStart;
    log(`${handling}: ${options.uploads} uploads, server CPU ${round(cpuMs)} ms, wall ${round(wallMs)} ms`);
    return { cpuMsPerUpload: round(cpuMs / options.uploads), wallMsPerUpload: round(wallMs / options.uploads) };
  } finally {
    child.kill();
  }
}

/** One chunked upload, each piece its own write (Nagle off), waiting for each to be taken by the kernel; resolves with the answer's first bytes. */
function upload(port: number, bytes: number, pieceBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let answer = "";
    socket.on("data", (data) => {
      answer += data.toString("latin1");
      if (answer.includes("\r\n\r\n")) { socket.destroy(); resolve(answer); }
    });
    socket.on("error", reject);
    socket.on("connect", async () => {
      socket.write(`POST /upload HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n`);
      const piece = Buffer.alloc(pieceBytes, 0x61);
      const framed = Buffer.concat([Buffer.from(`${pieceBytes.toString(16)}\r\n`), piece, Buffer.from("\r\n")]);
      for (let sent = 0; sent < bytes; sent += pieceBytes) {
        if (!socket.write(framed)) await new Promise((drained) => socket.once("drain", drained));
        // Let the server read what is there, so it sees pieces rather than one large read.
        if ((sent / pieceBytes) % 16 === 15) await new Promise((next) => setImmediate(next));
      }
      socket.write("0\r\n\r\n");
    });
  });
}

export const httpBodyBench = defineBench({
  description: "chunked uploads in small pieces: stock uWS request handler vs the node's HTTP edge, server CPU per upload",
  options: httpBodyBenchOptions,
  // Two child processes to start (tsx compiles on start); the stock handler's uploads may take seconds each.
  timeoutSeconds: (options) => 120 + options.uploads * 30,
  run: (options) => runHttpBodyBench(options),
});

/**
 * How an expo hall refuses, seen from the clients (real node, real Redis):
 * - a raw client on the protobuf channel alone (as a Unity client is) gets a refused
 *   move as an Error envelope, as expo.proto says, and still the room error;
 * - an SDK ExpoSession reports each refusal once;
 * - the `name` and `avatar` join options are checked, refused WRONG_TYPE.
 */
import "../../server/polyfills.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { Client, type Room } from "@colyseus/sdk";
import { ErrorCode, ENVELOPE_MESSAGE_TYPE, decodeEnvelope, encodeEnvelope, tsunagi } from "../../proto/index.ts";
import { flushRedisDb, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { ExpoLog, joinExpo, leaveAll, openHall, refusedWith, smallHall, waitForNeighbours } from "../fixtures/expo.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(2);
const HALL = `refusals-${randomUUID().slice(0, 6)}`;
let node: NodeProcess;
const rooms: Room[] = [];

/** A stock Colyseus client in the hall that reads only the protobuf channel, as a Unity client would. */
async function rawVisitor(): Promise<{ room: Room; envelopes: tsunagi.v1.Envelope[]; roomErrors: number[] }> {
  const client = new Client(node.httpUrl);
  client.auth.token = await testToken(node.clusterName, "visitor");
  const envelopes: tsunagi.v1.Envelope[] = [];
  const roomErrors: number[] = [];
  const room = await client.joinById(HALL, {});
  rooms.push(room);
  room.onMessage(ENVELOPE_MESSAGE_TYPE, (bytes: Uint8Array) => envelopes.push(decodeEnvelope(bytes)));
  room.onError((code) => roomErrors.push(code));
  await waitFor(() => envelopes.find((e) => e.body === "expoWelcome"), 10_000, "the raw visitor's welcome");
  return { room, envelopes, roomErrors };
}

const errorEnvelopes = (envelopes: tsunagi.v1.Envelope[]) => envelopes.filter((e) => e.body === "error").map((e) => ({ correlationId: Number(e.correlationId), code: e.error!.code }));

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  node = await startNode({ redisUrl, clusterName: `refusals-${randomUUID().slice(0, 8)}`, extraArgs: ["--limits-max-matchmake-per-second", "1000"] });
  const opened = await openHall(node, smallHall(HALL));
  expect(opened.status, JSON.stringify(opened.body)).toBe(201);
}, 60_000);

afterEach(async () => {
  await leaveAll();
  await Promise.all(rooms.splice(0).map((room) => room.leave().catch(() => {})));
});

afterAll(async () => {
  await node?.stop();
  await flushRedisDb(redisUrl);
});

describe("expo move refusals", () => {
  it("reach a client on the protobuf channel as Error envelopes (correlation id 0), and as room errors", async () => {
    const { room, envelopes, roomErrors } = await rawVisitor();
    room.sendBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope({ visitorMove: { seq: 1, x: 5000, y: 5, heading: 0, sentAtMs: Date.now() } }));
    await waitFor(() => errorEnvelopes(envelopes).length >= 1, 10_000, "an Error envelope for the move outside the hall");
    room.sendBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope({ visitorMove: { seq: 2, x: Number.NaN, y: 5, heading: 0, sentAtMs: Date.now() } }));
    await waitFor(() => errorEnvelopes(envelopes).length >= 2, 10_000, "an Error envelope for the NaN move");
    expect(errorEnvelopes(envelopes)).toEqual([
      { correlationId: 0, code: ErrorCode.OUT_OF_HALL },
      { correlationId: 0, code: ErrorCode.WRONG_TYPE },
    ]);
    await waitFor(() => roomErrors.length >= 2, 10_000, "the room errors");
    expect(roomErrors).toEqual([ErrorCode.OUT_OF_HALL, ErrorCode.WRONG_TYPE]);
  });

  it("an ExpoSession reports each refusal once, however many channels told it", async () => {
    const visitor = await joinExpo(node, HALL);
    const log = new ExpoLog(visitor);
    visitor.move(5000, 5, 0);
    await log.waitFor("error", (e) => e.code === ErrorCode.OUT_OF_HALL, "OUT_OF_HALL");
    (visitor as any).session.room.sendBytes(ENVELOPE_MESSAGE_TYPE, new Uint8Array([0xff, 0xff, 0xff]));
    await log.waitFor("error", (e) => e.code === ErrorCode.MALFORMED_PROTOBUF, "MALFORMED_PROTOBUF");
    // A duplicate would follow its original at once, before the reply to a later request.
    await refusedWith(visitor.chat({ kind: "hall" }, ""), ErrorCode.WRONG_TYPE);
    expect(log.errors().map((e) => e.code)).toEqual([ErrorCode.OUT_OF_HALL, ErrorCode.MALFORMED_PROTOBUF, ErrorCode.WRONG_TYPE]);
  });
});

describe("expo join options", () => {
  it("refuses a name or avatar outside its limits WRONG_TYPE, and shows valid ones to the neighbours", async () => {
    for (const options of [{ name: "" }, { name: "   " }, { name: "n".repeat(41) }, { name: 42 }, { avatar: "a".repeat(65) }, { avatar: {} }]) {
      const client = new Client(node.httpUrl);
      client.auth.token = await testToken(node.clusterName, "visitor");
      const error = await client.joinById(HALL, options).then(() => undefined, (e) => e);
      expect(error?.code, JSON.stringify(options)).toBe(ErrorCode.WRONG_TYPE);
      expect(String(error?.message), JSON.stringify(options)).toMatch(/name|avatar/);
    }
    const aiko = await joinExpo(node, HALL, { name: `  ${"A".repeat(38)}  `, avatar: "f".repeat(64) });
    const ben = await joinExpo(node, HALL);
    aiko.move(50, 30, 0);
    ben.move(52, 30, 0);
    await waitForNeighbours(ben, [aiko.visitorId], "ben sees aiko");
    expect(ben.neighbours.get(aiko.visitorId)).toMatchObject({ name: "A".repeat(38), avatar: "f".repeat(64) });
    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tsunagi_errors_total\{code="WRONG_TYPE",source="expo"\} [1-9]/);
  });
});

/**
 * Where a Redis is, as one string every setting and tool takes: a plain URL
 * (`redis://`, `rediss://`), or a Redis watched by Sentinel, whose primary the client
 * asks the sentinels for and follows through a failover:
 *
 *   redis-sentinel://[[user]:password@]host:port[,host:port...]/masterName[?db=N]
 *
 * The password is the data nodes' and the sentinels' alike (as deploy/k8s sets them up);
 * a sentinel's port defaults to 26379. The node's `--redis-sentinels h:p,... --redis-master-name
 * NAME` and the tools' flags of the same names build this form, one or the other and not
 * both (redisAddressFrom(), which names the settings as each caller calls them).
 *
 * openRedis() is the one place an ioredis client is made from such a string, so every
 * connection of the node and of the tools follows a failover the same way: it asks the
 * sentinels again when its connection drops (a primary that dies or is demoted closes its
 * clients' connections), and on a READONLY reply (it reached a primary just demoted)
 * reconnects and resends. It retries at most RECONNECT_MAX_DELAY_MS apart, so the nodes of
 * a region come back within that of each other (Failover waits for it).
 *
 * ioredis' `failoverDetector` (a subscription to the sentinels' +switch-master) is left
 * off: a switch announced while the client is still reconnecting ends the client for good
 * ("Connection is closed" in the middle of its sentinel lookup), which the failover test
 * caught. Without it, a primary cut off by the network without closing its connections is
 * noticed only when they time out.
 *
 * @example
 *   const redis = openRedis("redis-sentinel://:secret@10.0.0.5:26379,10.0.0.6:26379/tsunagi", { maxRetriesPerRequest: 2 });
 *   redactRedisAddress("redis://:secret@host:6379/0");   // "redis://***@host:6379/0"
 */
import { Redis, type RedisOptions } from "ioredis";

export const SENTINEL_SCHEME = "redis-sentinel://";
/** A sentinel listens here unless its address names a port. */
export const DEFAULT_SENTINEL_PORT = 26379;
/** How long a sentinel may take to answer which node is the primary, ms: a sentinel out of reach must not hold the lookup up. */
export const SENTINEL_COMMAND_TIMEOUT_MS = 2000;
/** The longest wait between two reconnection attempts of the node's clients, ms (ioredis' own default goes to 2000). */
export const RECONNECT_MAX_DELAY_MS = 1000;
/** A Sentinel master name: what `sentinel monitor` accepts and our URL form can carry. */
const MASTER_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export type RedisAddress =
  | { kind: "url"; url: string }
  | { kind: "sentinel"; sentinels: { host: string; port: number }[]; masterName: string; username?: string; password?: string; db: number };

/** Thrown for a Redis address that cannot be used; the message says what is wrong. */
export class RedisAddressError extends Error {}

/** Parses `address`; throws RedisAddressError saying what is wrong with it. */
export function parseRedisAddress(address: string): RedisAddress {
  if (/^rediss?:\/\//.test(address)) return { kind: "url", url: address };
  if (!address.startsWith(SENTINEL_SCHEME)) {
    throw new RedisAddressError(`${redactRedisAddress(address)}: a redis://, rediss:// or ${SENTINEL_SCHEME} address`);
  }
  const match = /^redis-sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)\/([^/?#]*)\/?(?:\?db=(\d{1,2}))?$/.exec(address);
  if (!match) throw new RedisAddressError(`${redactRedisAddress(address)}: ${SENTINEL_SCHEME}[:password@]host:port[,host:port...]/masterName[?db=N]`);
  const [, username, password, hosts, masterName, db] = match;
  return {
    kind: "sentinel",
    sentinels: parseSentinels(hosts.split(",")),
    masterName: checkMasterName(decodeURIComponent(masterName)),
    username: username ? decodeURIComponent(username) : undefined,
    password: password ? decodeURIComponent(password) : undefined,
    db: db === undefined ? 0 : Number(db),
  };
}

/** The sentinels in `entries` ("host:port", "[v6]:port" or a bare host); throws RedisAddressError on a bad one. */
export function parseSentinels(entries: readonly string[]): { host: string; port: number }[] {
  const list = entries.map((entry) => entry.trim()).filter((entry) => entry.length > 0);
  if (list.length === 0) throw new RedisAddressError("no sentinel given: host:port[,host:port...]");
  return list.map((entry) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+))(?::(\d{1,5}))?$/.exec(entry);
    const port = match?.[3] === undefined ? DEFAULT_SENTINEL_PORT : Number(match[3]);
    if (!match || port < 1 || port > 65535) throw new RedisAddressError(`sentinel "${entry}": host:port, e.g. 10.0.0.5:26379`);
    return { host: match[1] ?? match[2], port };
  });
}

function checkMasterName(name: string): string {
  if (!MASTER_NAME_PATTERN.test(name)) throw new RedisAddressError(`master name "${name}": letters, digits, '.', '_' and '-' (the name the sentinels monitor)`);
  return name;
}

/** The address of the primary named `masterName`, watched by `sentinels` ("host:port" each). */
export function sentinelAddress(sentinels: readonly string[], masterName: string, password?: string): string {
  const hosts = parseSentinels(sentinels).map(({ host, port }) => `${host.includes(":") ? `[${host}]` : host}:${port}`).join(",");
  const auth = password ? `:${encodeURIComponent(password)}@` : "";
  return `${SENTINEL_SCHEME}${auth}${hosts}/${checkMasterName(masterName)}`;
}

/** What each of the three Redis settings is called where they are given: the node's settings, the tools' flags. */
export interface RedisSettingNames { url: string; sentinels: string; masterName: string }

/**
 * The Redis address a URL setting, or a sentinels setting with a master-name setting,
 * give (one or the other, not both); undefined when none is. Throws RedisAddressError
 * naming the settings as `names` calls them.
 */
export function redisAddressFrom(given: { url?: string; sentinels?: readonly string[]; masterName?: string }, names: RedisSettingNames): string | undefined {
  const sentinels = given.sentinels?.filter((entry) => entry.trim().length > 0) ?? [];
  if (sentinels.length === 0 && given.masterName === undefined) {
    if (given.url !== undefined) parseRedisAddress(given.url);
    return given.url;
  }
  const together = `${names.sentinels} and ${names.masterName} go together`;
  const problems: string[] = [];
  if (given.url !== undefined) problems.push(`${names.sentinels}: give ${names.url} or ${names.sentinels} with ${names.masterName}, not both (a password goes in ${names.url}'s redis-sentinel:// form)`);
  if (sentinels.length === 0) problems.push(`${names.sentinels}: required with ${names.masterName} (host:port,...); ${together}`);
  if (given.masterName === undefined) problems.push(`${names.masterName}: required with ${names.sentinels} (the name the sentinels monitor); ${together}`);
  if (problems.length) throw new RedisAddressError(problems.join("; "));
  try {
    return sentinelAddress(sentinels, given.masterName!);
  } catch (error) {
    if (error instanceof RedisAddressError) throw new RedisAddressError(`${names.sentinels}: ${error.message}`);
    throw error;
  }
}

/** `address` with its password hidden, for logs and errors. */
export function redactRedisAddress(address: string): string {
  return address.replace(/\/\/[^@/]*@/, "//***@");
}

/**
 * An ioredis client on `address`, retrying at most RECONNECT_MAX_DELAY_MS apart unless
 * `givenOptions.retryStrategy` says otherwise. With sentinels, a given retryStrategy governs
 * the retries through the sentinels too (a tool that gives up at once gives up on them too).
 */
export function openRedis(address: string, givenOptions: RedisOptions = {}): Redis {
  const target = parseRedisAddress(address);
  const options: RedisOptions = { retryStrategy: (attempt) => Math.min(attempt * 50, RECONNECT_MAX_DELAY_MS), ...givenOptions };
  if (target.kind === "url") return new Redis(target.url, options);
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.masterName,
    username: target.username,
    password: target.password,
    sentinelPassword: target.password,
    db: target.db,
    sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
    ...(givenOptions.retryStrategy ? { sentinelRetryStrategy: givenOptions.retryStrategy } : {}),
    // A primary just demoted answers writes with READONLY: reconnect (asking the sentinels) and resend.
    reconnectOnError: (error) => (error.message.startsWith("READONLY") ? 2 : false),
  });
}

/** Where `redis` is connected now ("host:port"), or undefined while it is not. */
export function connectedTo(redis: Redis): string | undefined {
  const stream = (redis as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
  return stream?.remoteAddress && stream.remotePort ? `${stream.remoteAddress}:${stream.remotePort}` : undefined;
}

/**
 * What the command-line tools share: the one table of their `TSUNAGI_*` environment
 * defaults (the node's own settings are in server/config.ts), and how a tool runs, exits
 * and explains bad usage.
 *
 * Exit codes, for every tool: 0 done; 1 failed (the error printed); 2 bad usage (the
 * problem and the usage printed); a tool may add its own from 3 up.
 *
 * @example
 *   const env = cliEnv();
 *   runCli("audit", async () => { ... return 0; });
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { resolveSecret } from "../common/secrets.ts";
import { RedisAddressError, openRedis, redisAddressFrom } from "../server/redisAddress.ts";
import type { Redis } from "ioredis";

/** The tools' defaults from the environment, each variable read here and nowhere else. */
export interface CliEnv {
  /** The cluster's Redis (devices, audit): TSUNAGI_CLUSTER_REDIS_URL, else TSUNAGI_REDIS_URL. */
  clusterRedisUrl: string | undefined;
  /**
   * Without either: the sentinels of TSUNAGI_REDIS_SENTINELS with TSUNAGI_REDIS_MASTER_NAME,
   * as the node reads them, so a tool run beside a node finds its Redis.
   */
  redisSentinels: string | undefined;
  redisMasterName: string | undefined;
  /** Key namespace in the cluster Redis: TSUNAGI_CLUSTER_NAME, default "tsunagi". */
  clusterName: string;
  /** The cluster secret, for `npm run keys` only: TSUNAGI_AUTH_SECRET, or the file TSUNAGI_AUTH_SECRET_FILE. */
  authSecret: string | undefined;
  authSecretFile: string | undefined;
  /** The cluster's device key (hex), for `npm run devices`: TSUNAGI_DEVICE_KEY, or the file TSUNAGI_DEVICE_KEY_FILE. */
  deviceKey: string | undefined;
  deviceKeyFile: string | undefined;
  /** A bearer token for the node's routes and rooms: TSUNAGI_TOKEN, or the file TSUNAGI_TOKEN_FILE. */
  token: string | undefined;
  tokenFile: string | undefined;
}

export function cliEnv(env: NodeJS.ProcessEnv = process.env): CliEnv {
  return {
    clusterRedisUrl: env.TSUNAGI_CLUSTER_REDIS_URL || env.TSUNAGI_REDIS_URL || undefined,
    redisSentinels: env.TSUNAGI_REDIS_SENTINELS || undefined,
    redisMasterName: env.TSUNAGI_REDIS_MASTER_NAME || undefined,
    clusterName: env.TSUNAGI_CLUSTER_NAME || "tsunagi",
    authSecret: env.TSUNAGI_AUTH_SECRET || undefined,
    authSecretFile: env.TSUNAGI_AUTH_SECRET_FILE || undefined,
    deviceKey: env.TSUNAGI_DEVICE_KEY || undefined,
    deviceKeyFile: env.TSUNAGI_DEVICE_KEY_FILE || undefined,
    token: env.TSUNAGI_TOKEN || undefined,
    tokenFile: env.TSUNAGI_TOKEN_FILE || undefined,
  };
}

/**
 * The flags of the tools that work on the cluster's Redis (devices, audit): `--redis-url`
 * (a URL or a redis-sentinel:// address), or `--redis-sentinels h:p,...` with
 * `--redis-master-name`; the environment's Redis when none is given (clusterRedisAddress()).
 */
export function clusterRedisFlags(env: CliEnv = cliEnv()) {
  return {
    "redis-url": { type: "string" },
    "redis-sentinels": { type: "string" },
    "redis-master-name": { type: "string" },
    "cluster-name": { type: "string", default: env.clusterName },
  } as const;
}

/** The usage line of clusterRedisFlags(). */
export const CLUSTER_REDIS_USAGE = "[--redis-url URL | --redis-sentinels HOST:PORT,... --redis-master-name NAME] [--cluster-name NAME]";

/** The local Redis, when neither the flags nor the environment name one. */
const LOCAL_REDIS = "redis://127.0.0.1:6379";

/** Thrown by clusterRedisAddress() for flags that name no usable Redis: bad usage. */
export class RedisFlagsError extends Error {}

/**
 * The Redis address the tool's flags name (clusterRedisFlags()), or the environment's;
 * throws RedisFlagsError when they contradict each other or name a bad address.
 */
export function clusterRedisAddress(values: { "redis-url"?: string; "redis-sentinels"?: string; "redis-master-name"?: string }, env: CliEnv = cliEnv()): string {
  try {
    return redisAddressFrom(
      { url: values["redis-url"], sentinels: values["redis-sentinels"]?.split(","), masterName: values["redis-master-name"] },
      { url: "--redis-url", sentinels: "--redis-sentinels", masterName: "--redis-master-name" },
    ) ?? redisAddressFrom(
      { url: env.clusterRedisUrl, sentinels: env.clusterRedisUrl ? undefined : env.redisSentinels?.split(","), masterName: env.clusterRedisUrl ? undefined : env.redisMasterName },
      { url: "TSUNAGI_CLUSTER_REDIS_URL or TSUNAGI_REDIS_URL", sentinels: "TSUNAGI_REDIS_SENTINELS", masterName: "TSUNAGI_REDIS_MASTER_NAME" },
    ) ?? LOCAL_REDIS;
  } catch (error) {
    if (error instanceof RedisAddressError) throw new RedisFlagsError(error.message);
    throw error;
  }
}

/** A client on the tool's Redis (clusterRedisAddress()) that gives up at once when it is out of reach; connected by the caller. */
export function openClusterRedis(address: string): Redis {
  const redis = openRedis(address, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  redis.on("error", () => { /* connect() and the failing command report it */ });
  return redis;
}

/** The flags of the tools that take an access token. */
export const tokenFlags = {
  token: { type: "string" },
  "token-file": { type: "string" },
} as const;

/**
 * A tool's access token: --token-file or --token (which shows in the process list, so it
 * comes with a warning to print), else TSUNAGI_TOKEN_FILE or TSUNAGI_TOKEN; undefined
 * when none is given. Throws SecretError (common/secrets.ts) naming a bad source.
 */
export function accessToken(flags: { token?: string; "token-file"?: string }, env: CliEnv): { token: string | undefined; warning?: string } {
  const { secret, warning } = resolveSecret("access token", {
    flag: flags.token, flagName: "--token", file: flags["token-file"], fileName: "--token-file",
    env: env.token, envName: "TSUNAGI_TOKEN", envFile: env.tokenFile, envFileName: "TSUNAGI_TOKEN_FILE",
  });
  return { token: secret, warning };
}

/**
 * The tool's flags and positionals (strict: an unknown flag is an error), or the Error
 * saying what is wrong with them, for usageError().
 */
export function parseCliArgs<const O extends NonNullable<ParseArgsConfig["options"]>>(options: O, args: string[] = process.argv.slice(2)) {
  try {
    return parseArgs({ args, allowPositionals: true, strict: true, options });
  } catch (error) {
    return error as Error;
  }
}

/** Exit code for bad usage. */
export const EXIT_USAGE = 2;

/** Prints `problem` and the tool's usage on stderr; answers EXIT_USAGE. */
export function usageError(tool: string, usage: string, problem: string): number {
  process.stderr.write(`${tool}: ${problem}\n${usage}\n`);
  return EXIT_USAGE;
}

/**
 * Exits with `code` once everything written to stdout and stderr is out: process.exit()
 * drops writes still queued for a pipe, and an export read through one lost its tail.
 */
function exitFlushed(code: number): void {
  process.exitCode = code;
  let open = 2;
  const done = () => { if (--open === 0) process.exit(code); };
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength === 0) done();
    else stream.write("", done);
  }
}

/** Runs a tool's main and exits with its code; an exception prints `tool: message` and exits 1. */
export function runCli(tool: string, main: () => Promise<number>): void {
  main().then(exitFlushed, (error) => {
    const verbose = process.env.TSUNAGI_LOG_LEVEL === "debug" || process.env.TSUNAGI_LOG_LEVEL === "trace";
    process.stderr.write(`${tool}: ${verbose ? (error as Error)?.stack ?? error : (error as Error)?.message ?? error}\n`);
    exitFlushed(1);
  });
}

/**
 * `npm run keys -- <device-key|token-key> [--out FILE] [--auth-secret-file FILE]`
 *
 * Derives one of the cluster's keys from the cluster secret (server/auth/keys.ts), for
 * whoever needs that one key and must not hold the secret:
 * - device-key: for the provisioning tool (`npm run devices -- enroll`,
 *   `TSUNAGI_DEVICE_KEY_FILE`). It derives device secrets and nothing else.
 * - token-key: for an identity service that issues access tokens (HS256 with these 32
 *   bytes, `aud` = the cluster name, `exp` and `iat` set).
 *
 * Run it where the cluster secret lives: TSUNAGI_AUTH_SECRET_FILE, TSUNAGI_AUTH_SECRET or
 * --auth-secret-file (--auth-secret works, with a warning: it shows in the process list).
 * The key is printed in hex on stdout, or written to --out (a new file, mode 0600).
 *
 * Exit codes: 0 done; 2 bad usage (no secret, unknown key, --out exists); 1 anything else.
 */
import { writeFileSync } from "node:fs";
import { deriveKey, MIN_SECRET_LENGTH, type KeyPurpose } from "../server/auth/keys.ts";
import { resolveSecret, SecretError } from "../common/secrets.ts";
import { cliEnv, parseCliArgs, runCli, usageError } from "./env.ts";

const USAGE = "usage: npm run keys -- <device-key|token-key> [--out FILE] [--auth-secret-file FILE]\n"
  + "  the cluster secret from TSUNAGI_AUTH_SECRET_FILE, TSUNAGI_AUTH_SECRET or --auth-secret-file";

/** The keys this tool hands out; the room-option key never leaves the nodes. */
const PURPOSES: Record<string, KeyPurpose> = { "device-key": "device", "token-key": "token" };

async function main(): Promise<number> {
  const env = cliEnv();
  const parsed = parseCliArgs({
    out: { type: "string" },
    "auth-secret": { type: "string" },
    "auth-secret-file": { type: "string" },
  });
  if (parsed instanceof Error) return usage(parsed.message);
  const [command, ...rest] = parsed.positionals;
  const purpose = PURPOSES[command ?? ""];
  if (!purpose) return usage(`unknown key "${(command ?? "").slice(0, 40)}"`);
  if (rest.length > 0) return usage(`unexpected argument "${rest[0]!.slice(0, 40)}"`);

  let secret: string | undefined;
  try {
    const resolved = resolveSecret("cluster secret", {
      flag: parsed.values["auth-secret"], flagName: "--auth-secret", file: parsed.values["auth-secret-file"], fileName: "--auth-secret-file",
      env: env.authSecret, envName: "TSUNAGI_AUTH_SECRET", envFile: env.authSecretFile, envFileName: "TSUNAGI_AUTH_SECRET_FILE",
    });
    if (resolved.warning) process.stderr.write(`keys: warning: ${resolved.warning}\n`);
    secret = resolved.secret;
  } catch (error) {
    if (error instanceof SecretError) return usage(error.message);
    throw error;
  }
  if (!secret || secret.length < MIN_SECRET_LENGTH) return usage(`the cluster secret is required, at least ${MIN_SECRET_LENGTH} characters`);

  const key = deriveKey(secret, purpose).toString("hex") + "\n";
  const out = parsed.values.out;
  if (out === undefined) {
    process.stdout.write(key);
    return 0;
  }
  try {
    writeFileSync(out, key, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return usage(`--out ${out} exists; the tool does not overwrite a key file`);
    throw error;
  }
  process.stderr.write(`${command} written to ${out}\n`);
  return 0;
}

function usage(problem: string): number {
  return usageError("keys", USAGE, problem);
}

runCli("keys", main);

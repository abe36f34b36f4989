/**
 * Secrets on the command line: every process that takes one (the node, the adapter, the
 * tools) reads it from the environment or from a file. A flag still works, but any user
 * of the machine can read a process's arguments (`ps`), so a secret given as a flag is
 * used with a warning.
 *
 * @example
 *   const { secret, warning } = resolveSecret("device secret", {
 *     flag: values.secret, flagName: "--secret",
 *     file: values["secret-file"], fileName: "--secret-file",
 *     env: env.TSUNAGI_DEVICE_SECRET, envName: "TSUNAGI_DEVICE_SECRET",
 *     envFile: env.TSUNAGI_DEVICE_SECRET_FILE, envFileName: "TSUNAGI_DEVICE_SECRET_FILE",
 *   });
 */
import { readFileSync } from "node:fs";

/** A secret's possible sources, with the names to tell the user. */
export interface SecretSources {
  flag?: string;
  flagName: string;
  file?: string;
  fileName: string;
  env?: string;
  envName: string;
  envFile?: string;
  envFileName: string;
}

/** A secret that cannot be read; the message names the source. */
export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretError";
  }
}

/** The secret in `file`, surrounding whitespace (a trailing newline) dropped; `source` names where the path came from. */
export function readSecretFile(file: string, source: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new SecretError(`${source} ${file}: ${(error as Error).message}`);
  }
  const secret = text.trim();
  if (!secret) throw new SecretError(`${source} ${file} is empty`);
  return secret;
}

/** The warning for a secret given as a flag. */
export function argvSecretWarning(flagName: string, instead: string): string {
  return `${flagName} puts a secret in the process list, where any user of this machine can read it; use ${instead}`;
}

/**
 * The secret from its sources: a flag or a file flag first, else the variable or the
 * file variable. Two sources at one level are an error (which one was meant?); none is
 * `secret: undefined`. A secret from a flag comes with a warning to log.
 */
export function resolveSecret(what: string, sources: SecretSources): { secret: string | undefined; source?: string; warning?: string } {
  const flagLevel = [sources.flag !== undefined && sources.flagName, sources.file !== undefined && sources.fileName].filter(Boolean);
  if (flagLevel.length > 1) throw new SecretError(`give ${sources.flagName} or ${sources.fileName} for the ${what}, not both`);
  if (sources.flag !== undefined) {
    if (sources.flag === "") throw new SecretError(`${sources.flagName} must not be empty`);
    return { secret: sources.flag, source: sources.flagName, warning: argvSecretWarning(sources.flagName, `${sources.envName} or ${sources.fileName}`) };
  }
  if (sources.file !== undefined) return { secret: readSecretFile(sources.file, sources.fileName), source: sources.fileName };
  const env = sources.env || undefined;
  const envFile = sources.envFile || undefined;
  if (env !== undefined && envFile !== undefined) throw new SecretError(`both ${sources.envName} and ${sources.envFileName} are set for the ${what}; unset one`);
  if (envFile !== undefined) return { secret: readSecretFile(envFile, sources.envFileName), source: sources.envFileName };
  return { secret: env, source: env === undefined ? undefined : sources.envName };
}

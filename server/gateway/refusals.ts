/**
 * The coded error the gateway sends an adapter whose DeviceHello it refused, from whatever
 * the credential check threw (kept apart from DeviceGateway so that file stays readable).
 */
import { ErrorCode, ProtocolError } from "../../proto/index.ts";
import { DeviceCredentialError } from "../auth/DeviceCredentials.ts";

/** The coded error for a failed hello. */
export function refusalOf(error: unknown): { code: number; message: string } {
  if (error instanceof DeviceCredentialError) {
    const code = {
      "unknown-device": ErrorCode.DEVICE_UNKNOWN,
      revoked: ErrorCode.FORBIDDEN,
      "stale-enrolment": ErrorCode.FORBIDDEN,
      "bad-proof": ErrorCode.AUTH_FAILED,
      malformed: ErrorCode.WRONG_TYPE,
    }[error.reason];
    return { code, message: error.message };
  }
  if (error instanceof ProtocolError) return { code: error.code, message: error.message };
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "number") return { code, message: (error as Error).message };
  return { code: ErrorCode.INTERNAL, message: "credential check failed (see the gateway log)" };
}

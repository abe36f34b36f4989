/**
 * The credential check of a DeviceHello, one function per mode, and the revalidation of
 * a connected device's credential: what DeviceGateway asks at the hello and on its
 * revalidation timer (kept apart so the gateway file holds the listener and the flow).
 *
 * Modes (device.proto, DeviceHello.credential):
 * - signed_challenge: an HMAC of this connection's challenge with the device secret;
 * - token: a device token of the device's current enrolment;
 * - client_certificate: the TLS client certificate, on the certificate listener only
 *   (DeviceCertificates says whether it admits the device); then the device must be
 *   enrolled and not revoked, as in the other modes.
 */
import { ErrorCode, ProtocolError, type tsunagi } from "../../proto/index.ts";
import { NONCE_PATTERN } from "../../proto/deviceAuth.ts";
import { sameEnrolment, type DeviceCredentials, type DeviceRecord, type Enrolment } from "../auth/DeviceCredentials.ts";
import type { DeviceCertificates, PresentedCertificate } from "../auth/DeviceCertificates.ts";
import type { TokenService } from "../auth/tokens.ts";

/** How a device proved itself. */
export type CredentialMode = "signed-challenge" | "token" | "certificate";

/** What a hello's check needs of the gateway. */
export interface CredentialServices {
  credentials: DeviceCredentials;
  tokens: TokenService;
  certificates?: DeviceCertificates;
}

/** What the connection knows before the hello: its challenge, and (certificate listener only) the client certificate. */
export interface HelloContext {
  challenge: { nonce: string; serverTimeMs: number };
  /** undefined: not the certificate listener; null: it, without a client certificate. */
  presented?: PresentedCertificate | null;
}

/** A connected device's proven credential, for revalidation. */
export interface ProvenCredential {
  mode: CredentialMode;
  enrolment: Enrolment;
  /** Certificate mode: the serial of the client certificate. */
  serial?: string;
}

/** The mode a hello names. */
export function credentialMode(hello: tsunagi.v1.DeviceHello): CredentialMode {
  return hello.credential === "token" ? "token" : hello.credential === "clientCertificate" ? "certificate" : "signed-challenge";
}

/**
 * Resolves with the device's record and, in certificate mode, the certificate's serial;
 * throws what refusalOf() turns into the coded refusal.
 */
export async function verifyHello(services: CredentialServices, context: HelloContext, hello: tsunagi.v1.DeviceHello): Promise<{ record: DeviceRecord; serial?: string }> {
  const deviceId = hello.deviceId;
  const certificateListener = context.presented !== undefined;
  if (certificateListener && hello.credential !== "clientCertificate") {
    throw new ProtocolError(ErrorCode.WRONG_TYPE, "the certificate listener admits certificate mode only (DeviceHello.client_certificate); a secret or token connects to the gateway's other address");
  }
  if (hello.credential === "clientCertificate") {
    if (!certificateListener || !services.certificates) {
      throw new ProtocolError(ErrorCode.CERTIFICATE_MISSING, "this listener takes no client certificates: connect to the certUrl of the node's GET /gateway");
    }
    const certificate = await services.certificates.admit(deviceId, context.presented ?? undefined);
    return { record: await services.credentials.usable(deviceId), serial: certificate.serial };
  }
  if (hello.credential === "signedChallenge") {
    const signed = hello.signedChallenge!;
    if (signed.nonce !== context.challenge.nonce) throw new ProtocolError(ErrorCode.AUTH_FAILED, "the signed nonce is not this connection's challenge");
    if (!NONCE_PATTERN.test(hello.adapterNonce)) {
      throw new ProtocolError(ErrorCode.WRONG_TYPE, "adapter_nonce must be 64 lowercase hex characters: the gateway proves itself over it (update the adapter)");
    }
    return { record: await services.credentials.verify(deviceId, context.challenge, signed.signature ?? "") };
  }
  if (hello.credential === "token") {
    return { record: await services.credentials.admitToken(deviceId, await services.tokens.verify(hello.token)) };
  }
  throw new ProtocolError(ErrorCode.WRONG_TYPE, "DeviceHello carries no credential (token, signed_challenge or client_certificate)");
}

/**
 * Why a connected device's credential no longer holds, with the code to close it with;
 * undefined while it does. `record` is the registry's now (undefined: no longer enrolled).
 * A certificate is not tied to an enrolment (re-enrolling rotates the secret, not the
 * certificates), but its serial must still be admitted. Registry errors propagate.
 */
export async function revalidationRefusal(services: CredentialServices, record: DeviceRecord | undefined, proven: ProvenCredential): Promise<{ code: number; why: string } | undefined> {
  if (!record) return { code: ErrorCode.FORBIDDEN, why: "is no longer enrolled" };
  if (record.revoked) return { code: ErrorCode.FORBIDDEN, why: "was revoked" };
  if (proven.mode === "certificate") {
    const refusal = await services.certificates?.stillAdmitted(proven.serial ?? "");
    return refusal && { code: refusal.code, why: `no longer holds: ${refusal.why}` };
  }
  if (!sameEnrolment(record, proven.enrolment)) {
    return { code: ErrorCode.FORBIDDEN, why: "was re-enrolled" + (proven.mode === "token" ? " (the token names the earlier enrolment)" : " with a new secret") };
  }
  return undefined;
}

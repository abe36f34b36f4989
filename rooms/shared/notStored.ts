/**
 * What the sender of an acknowledged event (a teleop lease change, e-stop or action
 * result; an expo host's action) is told, with REGION_UNAVAILABLE, when the event took
 * effect here but could not be stored beyond this node in time: acknowledged, it would
 * be lost with the node. One wording for every room type.
 *
 * @example
 *   notStoredBeyondNode("the lease request took effect", "its audit entry")
 *   // "the lease request took effect here, but its audit entry could not be stored beyond this node yet: it would be lost with this node"
 */
export function notStoredBeyondNode(done: string, what = "it"): string {
  return `${done} here, but ${what} could not be stored beyond this node yet: it would be lost with this node`;
}

/**
 * Which page a path is: the node serves the same index.html at /expo/:hallId,
 * /teleop/:roomId and /console, and the app picks the page here.
 */
export type Route =
  | { page: "expo"; hallId: string }
  | { page: "teleop"; roomId: string }
  | { page: "console"; section: string }
  | { page: "home" };

/** Room and hall ids the server accepts: letters, digits, '_' and '-' (and a hall's zone '--'). */
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export function routeOf(pathname: string): Route {
  const [, first, second] = pathname.split("/").map((part) => decodeURIComponent(part));
  if (first === "expo" && second && ID.test(second)) return { page: "expo", hallId: second };
  if (first === "teleop" && second && ID.test(second)) return { page: "teleop", roomId: second };
  if (first === "console") return { page: "console", section: second && /^[a-z]{1,16}$/.test(second) ? second : "regions" };
  return { page: "home" };
}

/**
 * The deployment's rules for a rendered overlay of deploy/k8s (k8s-manifests.test.ts),
 * each a function returning its problems (`checks`), so the tests can show that each one
 * catches the fault it is for; and what they read a rendering with.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { configSettings } from "../../../server/configSettings.ts";
import { defaults } from "../../../server/config.ts";
import { NODE_ID_PATTERN, REGION_ID_PATTERN } from "../../../proto/ids.ts";
import { SENTINEL_SCHEME, parseRedisAddress, redactRedisAddress, type RedisAddress } from "../../../server/redisAddress.ts";
import { repoRoot } from "../../fixtures/processes.ts";
import { idOf, type Obj } from "../../fixtures/kustomize.ts";

export const k8sDir = path.join(repoRoot, "deploy/k8s");
export const overlaysDir = path.join(k8sDir, "overlays");
export const regionsText = readFileSync(path.join(repoRoot, "deploy/regions.json"));
export const regionIds: string[] = JSON.parse(regionsText.toString("utf8")).regions.map((region: { id: string }) => region.id);

/** Env names that carry a secret, or the file of one. */
const SECRETISH = /SECRET|TOKEN|PASSWORD|KEY/i;
/** Routes cheap enough for a liveness probe: no Redis, no registry, no JSON to build. */
const CHEAP_ROUTES = ["/ping"];
const WORKLOAD_KINDS = ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"];
const POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";
const DNS_ANNOTATION = "external-dns.alpha.kubernetes.io/hostname";
/** The env names the node reads (server/configSettings.ts), and its config file's. */
const NODE_ENV_NAMES = new Set([...configSettings.map((setting) => setting.env), "TSUNAGI_CONFIG"]);

// ---- reading a rendering

export interface Rendering {
  region: string;
  resources: Obj[];
}

function podSpecOf(resource: Obj): Obj | undefined {
  if (!WORKLOAD_KINDS.includes(resource.kind)) return undefined;
  if (resource.kind === "Pod") return resource.spec;
  if (resource.kind === "CronJob") return resource.spec?.jobTemplate?.spec?.template?.spec;
  return resource.spec?.template?.spec;
}

function podLabelsOf(resource: Obj): Obj {
  return (resource.kind === "CronJob" ? resource.spec?.jobTemplate?.spec?.template?.metadata?.labels : resource.spec?.template?.metadata?.labels) ?? {};
}

const containersOf = (spec: Obj): Obj[] => [...(spec.initContainers ?? []), ...(spec.containers ?? [])];

interface Workload {
  resource: Obj;
  spec: Obj;
}

function workloads(rendering: Rendering): Workload[] {
  return rendering.resources.flatMap((resource) => {
    const spec = podSpecOf(resource);
    return spec ? [{ resource, spec }] : [];
  });
}

/** The region's node StatefulSet and its `node` container; throws unless there is exactly one. */
export function nodeSet(rendering: Rendering): { set: Obj; spec: Obj; node: Obj } {
  const sets = rendering.resources.filter((resource) => resource.kind === "StatefulSet" && (resource.spec?.template?.spec?.containers ?? []).some((container: Obj) => container.name === "node"));
  if (sets.length !== 1) throw new Error(`${rendering.region}: ${sets.length} StatefulSets run a container named node, not one`);
  const spec = sets[0]!.spec.template.spec;
  return { set: sets[0]!, spec, node: spec.containers.find((container: Obj) => container.name === "node") };
}

const matchesLabels = (selector: Obj | undefined, labels: Obj) => selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);

/** A Secret reference's stand-in in expanded env values: a URL-safe word. */
const SECRET_VALUE = "from-a-secret";

/**
 * A container's env as its process sees it in pod `podName`: fieldRefs resolved, `$(NAME)`
 * expanded from the variables above it (as Kubernetes does), configMapKeyRef read from the
 * rendering, a secretKeyRef as SECRET_VALUE.
 */
export function envOf(container: Obj, podName: string, rendering: Rendering): Map<string, string> {
  const values = new Map<string, string>();
  for (const variable of container.env ?? []) {
    let value: string | undefined;
    const from = variable.valueFrom;
    if (variable.value !== undefined) {
      value = String(variable.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => values.get(name) ?? whole);
    } else if (from?.fieldRef?.fieldPath === "metadata.name") {
      value = podName;
    } else if (from?.fieldRef?.fieldPath === "metadata.namespace") {
      value = rendering.resources[0]?.metadata?.namespace ?? "default";
    } else if (from?.secretKeyRef) {
      value = SECRET_VALUE;
    } else if (from?.configMapKeyRef) {
      value = rendering.resources.find((resource) => resource.kind === "ConfigMap" && resource.metadata.name === from.configMapKeyRef.name)?.data?.[from.configMapKeyRef.key];
    }
    if (value !== undefined) values.set(variable.name, value);
  }
  return values;
}

/** The Secret (name and key) behind `file` as mounted in `container`, or undefined if it is not a Secret's. */
function secretFileOf(spec: Obj, container: Obj, file: string | undefined): { secretName: string; key: string } | undefined {
  if (!file) return undefined;
  for (const mount of container.volumeMounts ?? []) {
    const volume = (spec.volumes ?? []).find((candidate: Obj) => candidate.name === mount.name);
    if (!volume?.secret) continue;
    let key: string | undefined;
    if (mount.subPath) {
      if (file === mount.mountPath) key = mount.subPath;
    } else if (file.startsWith(`${mount.mountPath}/`)) {
      const inside = file.slice(mount.mountPath.length + 1);
      key = volume.secret.items ? volume.secret.items.find((item: Obj) => item.path === inside)?.key : inside;
    }
    if (key) return { secretName: volume.secret.secretName, key };
  }
  return undefined;
}

/** The ConfigMap data behind `file` as mounted in `container`, or undefined. */
function configMapFileOf(rendering: Rendering, spec: Obj, container: Obj, file: string): string | undefined {
  for (const mount of container.volumeMounts ?? []) {
    const volume = (spec.volumes ?? []).find((candidate: Obj) => candidate.name === mount.name);
    if (!volume?.configMap || !file.startsWith(`${mount.mountPath}/`)) continue;
    const inside = file.slice(mount.mountPath.length + 1);
    const key = volume.configMap.items ? volume.configMap.items.find((item: Obj) => item.path === inside)?.key : inside;
    const map = rendering.resources.find((resource) => resource.kind === "ConfigMap" && resource.metadata.name === volume.configMap.name);
    if (key && map?.data?.[key] !== undefined) return map.data[key];
  }
  return undefined;
}

export function hostPort(address: string | undefined): { host: string; port: number } | undefined {
  const match = /^([^\s:/]+):(\d{1,5})$/.exec(address ?? "");
  return match ? { host: match[1]!, port: Number(match[2]) } : undefined;
}

/** The container port a probe or Service `targetPort` names (by name or number). */
function containerPort(container: Obj, port: string | number | undefined): number | undefined {
  if (typeof port === "number") return port;
  return (container.ports ?? []).find((candidate: Obj) => candidate.name === port)?.containerPort;
}

const CPU = /^(\d+(?:\.\d+)?)(m?)$/;
const MEMORY = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const MEMORY_UNITS: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

function quantity(kind: "cpu" | "memory", text: unknown): number | undefined {
  const match = (kind === "cpu" ? CPU : MEMORY).exec(String(text ?? ""));
  if (!match) return undefined;
  return kind === "cpu" ? Number(match[1]) / (match[2] ? 1000 : 1) : Number(match[1]) * MEMORY_UNITS[match[2] ?? ""]!;
}

function preStopMs(container: Obj): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep?.seconds !== undefined) return preStop.sleep.seconds * 1000;
  const command: string[] = preStop?.exec?.command ?? [];
  const seconds = command[0] === "sleep" ? Number(command[1]) : /\bsleep\s+(\d+)/.exec(command.join(" "))?.[1];
  return seconds === undefined ? 0 : Number(seconds) * 1000;
}

/** The per-node Services: those selecting a pod of the node StatefulSet by its name. */
export function nodeServices(rendering: Rendering): Obj[] {
  const prefix = `${nodeSet(rendering).set.metadata.name}-`;
  return rendering.resources.filter((resource) => resource.kind === "Service" && /^\d+$/.test(String(resource.spec?.selector?.[POD_NAME_LABEL] ?? "").slice(prefix.length)) && String(resource.spec.selector[POD_NAME_LABEL]).startsWith(prefix));
}

const SENTINEL_COMMAND = /--sentinel|redis-sentinel/;
const commandOf = (container: Obj): string => [...(container.command ?? []), ...(container.args ?? [])].join(" ");

/** The StatefulSets that run Redis (redis-server) with a Sentinel beside it. */
export function redisSets(rendering: Rendering): Obj[] {
  return rendering.resources.filter((resource) => resource.kind === "StatefulSet").filter((resource) => {
    const commands = (resource.spec.template.spec.containers ?? []).map(commandOf);
    return commands.some((command: string) => /redis-server/.test(command) && !SENTINEL_COMMAND.test(command)) && commands.some((command: string) => SENTINEL_COMMAND.test(command));
  });
}

// ---- the rules, each a list of problems

type Check = (rendering: Rendering) => string[];

export const checks: Record<string, Check> = {
  "the node gets the overlay's region id, and node ids of the region's pattern": (rendering) => {
    const { set, node } = nodeSet(rendering);
    const problems: string[] = [];
    for (let ordinal = 0; ordinal < (set.spec.replicas ?? 1); ordinal++) {
      const env = envOf(node, `${set.metadata.name}-${ordinal}`, rendering);
      const region = env.get("TSUNAGI_REGION_ID");
      if (region !== rendering.region) problems.push(`pod ${ordinal}: TSUNAGI_REGION_ID is ${region}, not ${rendering.region}`);
      if (!REGION_ID_PATTERN.test(region ?? "")) problems.push(`pod ${ordinal}: region id ${region} is not a valid region id`);
      const nodeId = env.get("TSUNAGI_NODE_ID") ?? "";
      if (!NODE_ID_PATTERN.test(nodeId) || !nodeId.includes(rendering.region)) problems.push(`pod ${ordinal}: node id ${nodeId} is not a valid id naming its region`);
    }
    return problems;
  },
  "the node sets only settings it has": (rendering) => {
    const { node } = nodeSet(rendering);
    return (node.env ?? []).map((variable: Obj) => variable.name as string)
      .filter((name: string) => name.startsWith("TSUNAGI_") && !NODE_ENV_NAMES.has(name))
      .map((name: string) => `${name} is no setting of the node (server/configSettings.ts)`);
  },
  "readiness on /healthz, liveness on a cheap route, both on the client port": (rendering) => {
    const { node } = nodeSet(rendering);
    const env = envOf(node, "node-0", rendering);
    const clientPort = Number(env.get("TSUNAGI_PORT") ?? defaults.port);
    const scheme = env.get("TSUNAGI_TLS_CERT_FILE") ? "HTTPS" : "HTTP";
    const problems: string[] = [];
    const readiness = node.readinessProbe?.httpGet;
    const liveness = node.livenessProbe?.httpGet;
    if (readiness?.path !== "/healthz") problems.push(`readiness probe ${JSON.stringify(node.readinessProbe)} is not an HTTP GET of /healthz`);
    if (!liveness || liveness.path === "/healthz" || !CHEAP_ROUTES.includes(liveness.path)) problems.push(`liveness probe ${JSON.stringify(node.livenessProbe)} is not an HTTP GET of ${CHEAP_ROUTES.join(" or ")}`);
    for (const [name, probe] of [["readiness", readiness], ["liveness", liveness]] as const) {
      if (!probe) continue;
      if (containerPort(node, probe.port) !== clientPort) problems.push(`${name} probe port ${probe.port} is not the client port ${clientPort}`);
      if ((probe.scheme ?? "HTTP") !== scheme) problems.push(`${name} probe scheme ${probe.scheme ?? "HTTP"}, the node serves ${scheme}`);
    }
    return problems;
  },
  "a preStop hook, and a grace period above it plus the drain timeout": (rendering) => {
    const { spec, node } = nodeSet(rendering);
    if (!node.lifecycle?.preStop) return ["the node container has no preStop hook"];
    const drainMs = Number(envOf(node, "node-0", rendering).get("TSUNAGI_DRAIN_TIMEOUT_MS") ?? defaults.drainTimeoutMs);
    const graceMs = (spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const needed = drainMs + preStopMs(node);
    return graceMs > needed ? [] : [`terminationGracePeriodSeconds ${graceMs / 1000} s is not above preStop + drainTimeoutMs (${needed / 1000} s)`];
  },
  "requests and limits of cpu and memory on every container, requests within limits": (rendering) => {
    const problems: string[] = [];
    for (const { resource, spec } of workloads(rendering)) {
      for (const container of containersOf(spec)) {
        for (const kind of ["cpu", "memory"] as const) {
          const request = quantity(kind, container.resources?.requests?.[kind]);
          const limit = quantity(kind, container.resources?.limits?.[kind]);
          if (request === undefined || limit === undefined) problems.push(`${idOf(resource)} ${container.name}: no ${kind} request and limit`);
          else if (request > limit) problems.push(`${idOf(resource)} ${container.name}: ${kind} request above its limit`);
        }
      }
    }
    return problems;
  },
  "non-root, no privilege escalation, no capabilities, read-only root with an emptyDir /tmp": (rendering) => {
    const problems: string[] = [];
    for (const { resource, spec } of workloads(rendering)) {
      if (spec.hostNetwork || spec.hostPID || spec.hostIPC) problems.push(`${idOf(resource)}: shares the host's namespaces`);
      for (const container of containersOf(spec)) {
        const where = `${idOf(resource)} ${container.name}`;
        const context = container.securityContext ?? {};
        if ((context.runAsNonRoot ?? spec.securityContext?.runAsNonRoot) !== true) problems.push(`${where}: not runAsNonRoot`);
        if ((context.runAsUser ?? spec.securityContext?.runAsUser) === 0) problems.push(`${where}: runs as uid 0`);
        if (context.allowPrivilegeEscalation !== false) problems.push(`${where}: privilege escalation not forbidden`);
        if (context.privileged) problems.push(`${where}: privileged`);
        if (!(context.capabilities?.drop ?? []).includes("ALL") || (context.capabilities?.add ?? []).length) problems.push(`${where}: capabilities not all dropped`);
        if (context.readOnlyRootFilesystem !== true) problems.push(`${where}: root filesystem writable`);
      }
    }
    const { spec, node } = nodeSet(rendering);
    const tmp = (node.volumeMounts ?? []).find((mount: Obj) => mount.mountPath === "/tmp");
    if (!(spec.volumes ?? []).find((volume: Obj) => volume.name === tmp?.name)?.emptyDir) problems.push("the node container has no emptyDir on /tmp");
    return problems;
  },
  "node pods spread across zones and hosts": (rendering) => {
    const { set, spec } = nodeSet(rendering);
    const labels = podLabelsOf(set);
    return ["topology.kubernetes.io/zone", "kubernetes.io/hostname"].flatMap((key) => {
      const constraint = (spec.topologySpreadConstraints ?? []).find((candidate: Obj) => candidate.topologyKey === key);
      return constraint && matchesLabels(constraint.labelSelector?.matchLabels, labels) ? [] : [`no topology spread over ${key} selecting the node pods`];
    });
  },
  "a PodDisruptionBudget of one node pod at a time": (rendering) => {
    const labels = podLabelsOf(nodeSet(rendering).set);
    const budgets = rendering.resources.filter((resource) => resource.kind === "PodDisruptionBudget" && matchesLabels(resource.spec?.selector?.matchLabels, labels));
    if (budgets.length !== 1) return [`${budgets.length} PodDisruptionBudgets select the node pods, not one`];
    return budgets[0]!.spec.maxUnavailable === 1 ? [] : [`the node pods' budget allows ${budgets[0]!.spec.maxUnavailable ?? "?"} unavailable, not 1`];
  },
  "one public LoadBalancer Service per node, at the node's public and gateway addresses": (rendering) => {
    const { set, node } = nodeSet(rendering);
    const replicas = set.spec.replicas ?? 1;
    const labels = podLabelsOf(set);
    const services = nodeServices(rendering);
    const problems: string[] = [];
    if (services.length !== replicas) problems.push(`${services.length} per-node Services for ${replicas} replicas`);
    const env0 = envOf(node, `${set.metadata.name}-0`, rendering);
    const clientPort = Number(env0.get("TSUNAGI_PORT") ?? defaults.port);
    const gatewayPort = Number(env0.get("TSUNAGI_GATEWAY_PORT") ?? defaults.gateway.port);
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const podName = `${set.metadata.name}-${ordinal}`;
      const mine = services.filter((service) => service.spec.selector[POD_NAME_LABEL] === podName);
      if (mine.length !== 1) {
        problems.push(`${mine.length} Services select pod ${podName}, not one`);
        continue;
      }
      const service = mine[0]!;
      const { [POD_NAME_LABEL]: _, ...others } = service.spec.selector;
      if (Object.keys(others).length && !matchesLabels(others, labels)) problems.push(`${service.metadata.name}: its selector ${JSON.stringify(service.spec.selector)} misses the node pods' labels`);
      if (service.spec.type !== "LoadBalancer") problems.push(`${service.metadata.name}: type ${service.spec.type}, not LoadBalancer`);
      if (service.spec.externalTrafficPolicy !== "Local") problems.push(`${service.metadata.name}: the node would see the balancer's address, not the client's (externalTrafficPolicy Local)`);
      const env = envOf(node, podName, rendering);
      const dnsName = service.metadata.annotations?.[DNS_ANNOTATION];
      for (const [setting, port, what] of [["TSUNAGI_PUBLIC_ADDRESS", clientPort, "client"], ["TSUNAGI_GATEWAY_PUBLIC_ADDRESS", gatewayPort, "gateway"]] as const) {
        const address = hostPort(env.get(setting));
        if (!address) {
          problems.push(`${podName}: ${setting} ${env.get(setting)} is not host:port`);
          continue;
        }
        if (address.host !== dnsName) problems.push(`${podName}: ${setting} names ${address.host}, its Service ${service.metadata.name} is published as ${dnsName}`);
        const servicePort = (service.spec.ports ?? []).find((candidate: Obj) => candidate.port === address.port);
        if (!servicePort || containerPort(node, servicePort.targetPort) !== port) problems.push(`${podName}: ${service.metadata.name} has no port ${address.port} to the ${what} port ${port}`);
        else if ((servicePort.protocol ?? "TCP") !== "TCP") problems.push(`${service.metadata.name}: the ${what} port is ${servicePort.protocol}, not TCP`);
      }
    }
    return problems;
  },
  "the node's TLS files, the gateway's included, come from a Secret": (rendering) => {
    const { spec, node } = nodeSet(rendering);
    const env = envOf(node, "node-0", rendering);
    const problems: string[] = [];
    const pairs = [["TSUNAGI_TLS_CERT_FILE", "TSUNAGI_TLS_KEY_FILE"]];
    if (env.get("TSUNAGI_GATEWAY_CERT_FILE")) pairs.push(["TSUNAGI_GATEWAY_CERT_FILE", "TSUNAGI_GATEWAY_KEY_FILE"]);
    for (const [cert, key] of pairs) {
      for (const name of [cert!, key!]) {
        if (!secretFileOf(spec, node, env.get(name))) problems.push(`${name} (${env.get(name) ?? "unset"}) is no file of a mounted Secret`);
      }
    }
    return problems;
  },
  "no secret value in any manifest": (rendering) => {
    const problems: string[] = [];
    for (const resource of rendering.resources) {
      if (resource.kind === "Secret") problems.push(`${idOf(resource)}: a Secret in the manifests`);
      if (JSON.stringify(resource).includes("PRIVATE KEY-----")) problems.push(`${idOf(resource)}: holds a private key`);
      if (resource.kind === "ConfigMap") {
        for (const key of Object.keys(resource.data ?? {})) if (SECRETISH.test(key)) problems.push(`${idOf(resource)}: key ${key} in a ConfigMap`);
      }
    }
    for (const { resource, spec } of workloads(rendering)) {
      for (const container of containersOf(spec)) {
        const where = `${idOf(resource)} ${container.name}`;
        const fromSecrets = new Set<string>((container.env ?? []).filter((variable: Obj) => variable.valueFrom?.secretKeyRef).map((variable: Obj) => variable.name));
        for (const variable of container.env ?? []) {
          if (variable.valueFrom?.secretKeyRef) continue;
          const fileOfSecret = variable.name.endsWith("_FILE") && secretFileOf(spec, container, variable.value);
          if (SECRETISH.test(variable.name) && !fileOfSecret) problems.push(`${where}: ${variable.name} is given a value, not a secretKeyRef or a file of a mounted Secret`);
          // A URL's password only as $(VARIABLE) of a secretKeyRef.
          const password = /^[a-z][a-z0-9+.-]*:\/\/[^\s/@]*:([^\s/@]*)@/i.exec(String(variable.value ?? ""))?.[1];
          const reference = /^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(password ?? "")?.[1];
          if (password !== undefined && !(reference && fromSecrets.has(reference))) problems.push(`${where}: ${variable.name} carries a password that is not $(a secretKeyRef variable)`);
        }
        for (const from of container.envFrom ?? []) {
          if (from.configMapRef) problems.push(`${where}: envFrom a ConfigMap (secrets could hide there; name each variable)`);
        }
      }
    }
    return problems;
  },
  "a Janus sidecar beside the node, on loopback, sharing its secrets through a Secret": (rendering) => {
    const { spec, node } = nodeSet(rendering);
    const sidecars = [...(spec.initContainers ?? []).filter((container: Obj) => container.restartPolicy === "Always"), ...spec.containers.filter((container: Obj) => container !== node)];
    const janus = sidecars.find((container: Obj) => /janus/i.test(`${container.name} ${container.image}`));
    if (!janus) return ["no Janus sidecar in the node pod"];
    const env = envOf(node, "node-0", rendering);
    const problems: string[] = [];
    for (const name of ["TSUNAGI_VOICE_JANUS_URL", "TSUNAGI_VOICE_JANUS_ADMIN_URL"]) {
      const host = URL.canParse(env.get(name) ?? "") ? new URL(env.get(name)!).hostname : "";
      if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) problems.push(`${name} ${env.get(name) ?? "unset"} is not the sidecar's loopback address`);
    }
    const secrets = secretFileOf(spec, node, env.get("TSUNAGI_VOICE_JANUS_SECRETS_FILE"));
    if (!secrets) problems.push("TSUNAGI_VOICE_JANUS_SECRETS_FILE is no file of a mounted Secret");
    const janusSecrets = (janus.volumeMounts ?? []).map((mount: Obj) => (spec.volumes ?? []).find((volume: Obj) => volume.name === mount.name)?.secret?.secretName);
    if (secrets && !janusSecrets.includes(secrets.secretName)) problems.push(`the Janus sidecar does not mount Secret ${secrets.secretName}`);
    return problems;
  },
  "Redis with Sentinel, and the node's Redis URL naming its sentinels": (rendering) => {
    const sets = redisSets(rendering);
    if (sets.length !== 1) return [`${sets.length} StatefulSets run Redis with a Sentinel beside it, not one`];
    const redis = sets[0]!;
    const setName: string = redis.metadata.name;
    const replicas: number = redis.spec.replicas ?? 1;
    const redisSpec = redis.spec.template.spec;
    const problems: string[] = [];
    if (replicas < 3) problems.push(`Redis has ${replicas} replicas: a Sentinel quorum needs 3`);
    // What the sentinels monitor: redis-init.sh writes `sentinel monitor $REDIS_MASTER_NAME ...`.
    const masterNames = new Set(containersOf(redisSpec).map((container) => envOf(container, `${setName}-0`, rendering).get("REDIS_MASTER_NAME")).filter((name) => name !== undefined));
    if (masterNames.size !== 1) problems.push(`the Redis pods get ${masterNames.size} REDIS_MASTER_NAMEs (${[...masterNames].join(", ")}), not one`);
    // The sentinels' names: <set>-<ordinal>.<headless Service>, on the port it exposes for the sentinel container.
    const serviceName: string | undefined = redis.spec.serviceName;
    const headless = rendering.resources.find((resource) => resource.kind === "Service" && resource.metadata.name === serviceName);
    if (!headless) return [...problems, `no Service ${serviceName}, the serviceName of StatefulSet ${setName}: its pods have no DNS names`];
    if (headless.spec.clusterIP !== "None") problems.push(`Service ${serviceName} is not headless (clusterIP None): no name per pod`);
    if (!matchesLabels(headless.spec.selector, podLabelsOf(redis))) problems.push(`Service ${serviceName} does not select the Redis pods`);
    const sentinel = (redisSpec.containers ?? []).find((container: Obj) => SENTINEL_COMMAND.test(commandOf(container)));
    const sentinelPorts = new Set<number>((headless.spec.ports ?? [])
      .filter((port: Obj) => (sentinel?.ports ?? []).some((candidate: Obj) => candidate.containerPort === containerPort(sentinel, port.targetPort ?? port.port)))
      .map((port: Obj) => port.port));
    if (sentinelPorts.size === 0) problems.push(`Service ${serviceName} exposes no port of the sentinel container`);

    const { node } = nodeSet(rendering);
    const url = envOf(node, "node-0", rendering).get("TSUNAGI_REDIS_URL");
    if (url === undefined) return [...problems, "TSUNAGI_REDIS_URL is unset"];
    let address: RedisAddress;
    try {
      address = parseRedisAddress(url);
    } catch (error) {
      return [...problems, `TSUNAGI_REDIS_URL: ${(error as Error).message}`];
    }
    if (address.kind !== "sentinel") return [...problems, `TSUNAGI_REDIS_URL ${redactRedisAddress(url)} is not a ${SENTINEL_SCHEME} address: the node would not follow a failover`];

    const namespace: string | undefined = redis.metadata.namespace;
    const domains = [serviceName, ...(namespace ? [`${serviceName}.${namespace}`, `${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`] : [])];
    const podOf = (host: string): string | undefined => {
      const dot = host.indexOf(".");
      const [pod, domain] = [host.slice(0, dot).toLowerCase(), host.slice(dot + 1).toLowerCase().replace(/\.$/, "")];
      const ordinal = /^(0|[1-9]\d*)$/.exec(pod.slice(setName.length + 1))?.[1];
      return dot > 0 && pod.startsWith(`${setName}-`) && ordinal !== undefined && Number(ordinal) < replicas && domains.includes(domain) ? pod : undefined;
    };
    const pods = new Set<string>();
    for (const { host, port } of address.sentinels) {
      const pod = podOf(host);
      if (pod) pods.add(pod);
      else problems.push(`sentinel ${host} is no pod of StatefulSet ${setName} through Service ${serviceName} (${setName}-<ordinal below ${replicas}>.${serviceName})`);
      if (sentinelPorts.size > 0 && !sentinelPorts.has(port)) problems.push(`sentinel ${host}:${port}: Service ${serviceName} exposes the sentinel on ${[...sentinelPorts].join(", ")}`);
    }
    if (pods.size < 3) problems.push(`TSUNAGI_REDIS_URL names ${pods.size} sentinels of the set, not at least 3`);
    const [masterName] = masterNames;
    if (masterNames.size === 1 && address.masterName !== masterName) problems.push(`TSUNAGI_REDIS_URL names master ${address.masterName}, the sentinels monitor ${masterName} (REDIS_MASTER_NAME)`);

    // The Redis pods and their sentinels require the set's password (requirepass): the URL's is $(a variable of the same Secret).
    const secretOf = (container: Obj, name: string): Obj | undefined => (container.env ?? []).find((variable: Obj) => variable.name === name)?.valueFrom?.secretKeyRef;
    const redisSecret = containersOf(redisSpec).map((container) => secretOf(container, "REDIS_PASSWORD")).find((ref) => ref !== undefined);
    const raw = String((node.env ?? []).find((variable: Obj) => variable.name === "TSUNAGI_REDIS_URL")?.value ?? "");
    const reference = /^[a-z][a-z0-9+.-]*:\/\/[^:@/]*:\$\(([A-Za-z_][A-Za-z0-9_]*)\)@/i.exec(raw)?.[1];
    const nodeSecret = reference === undefined ? undefined : secretOf(node, reference);
    if (!address.password) problems.push("TSUNAGI_REDIS_URL carries no password: the Redis pods and their sentinels require one");
    else if (!redisSecret || nodeSecret?.name !== redisSecret.name || nodeSecret?.key !== redisSecret.key) {
      problems.push(`TSUNAGI_REDIS_URL's password is not $(a variable from Secret ${redisSecret?.name ?? "?"}, key ${redisSecret?.key ?? "?"}), the Redis pods' REDIS_PASSWORD`);
    }
    return problems;
  },
  "the node reads the topology of deploy/regions.json": (rendering) => {
    const { spec, node } = nodeSet(rendering);
    const file = envOf(node, "node-0", rendering).get("TSUNAGI_REGIONS_FILE");
    if (!file) return ["TSUNAGI_REGIONS_FILE is unset"];
    const text = configMapFileOf(rendering, spec, node, file);
    return text === regionsText.toString("utf8") ? [] : [`${file} is ${text === undefined ? "no file of a mounted ConfigMap" : "not deploy/regions.json"}`];
  },
  "every resource in the region's namespace": (rendering) => {
    const namespaces = new Set(rendering.resources.map((resource) => resource.metadata?.namespace));
    return namespaces.size === 1 && [...namespaces][0] ? [] : [`namespaces ${JSON.stringify([...namespaces])}, not one`];
  },
};

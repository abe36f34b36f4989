/**
 * The Kubernetes manifests (deploy/k8s, docs/deploy.md) as a test: every region of
 * deploy/regions.json has an overlay and no other region has one, and each overlay,
 * rendered, holds to the deployment's rules: probes, drain and grace period, resources,
 * security context, spread, disruption budget, one public Service per node whose name is
 * the node's public address, TLS and every secret from Kubernetes Secrets, the Janus
 * sidecar, Redis with Sentinel and the node's Redis URL naming its sentinels, and the
 * region id the node gets.
 *
 * Overlays are rendered with `kubectl kustomize` where kubectl is installed, and always by
 * a small renderer of the kustomize features the overlays use (`build` below), so a
 * machine without kubectl checks the same rules; where both run, they must agree.
 *
 * Each rule is a function returning its problems (`checks`), so the last tests can show
 * that each one catches the fault it is for.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { configSettings } from "../../../server/configSettings.ts";
import { defaults } from "../../../server/config.ts";
import { NODE_ID_PATTERN, REGION_ID_PATTERN } from "../../../proto/ids.ts";
import { SENTINEL_SCHEME, parseRedisAddress, redactRedisAddress, type RedisAddress } from "../../../server/redisAddress.ts";
import { repoRoot } from "../../fixtures/processes.ts";

// Manifests are plain data of any shape: walked as such.
type Obj = Record<string, any>;

const k8sDir = path.join(repoRoot, "deploy/k8s");
const overlaysDir = path.join(k8sDir, "overlays");
const regionsText = readFileSync(path.join(repoRoot, "deploy/regions.json"));
const regionIds: string[] = JSON.parse(regionsText.toString("utf8")).regions.map((region: { id: string }) => region.id);

/** Env names that carry a secret, or the file of one. */
const SECRETISH = /SECRET|TOKEN|PASSWORD|KEY/i;
/** Routes cheap enough for a liveness probe: no Redis, no registry, no JSON to build. */
const CHEAP_ROUTES = ["/ping"];
const WORKLOAD_KINDS = ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"];
const POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";
const DNS_ANNOTATION = "external-dns.alpha.kubernetes.io/hostname";
/** The env names the node reads (server/configSettings.ts), and its config file's. */
const NODE_ENV_NAMES = new Set([...configSettings.map((setting) => setting.env), "TSUNAGI_CONFIG"]);

function parseYaml(text: string, where: string): Obj[] {
  return parseAllDocuments(text).flatMap((document) => {
    if (document.errors.length) throw new Error(`${where}: ${document.errors[0]!.message}`);
    const value = document.toJS();
    return value === null || value === undefined ? [] : [value as Obj];
  });
}

const relative = (file: string) => path.relative(repoRoot, file);

// ---- rendering

/** kubectl on the PATH (or in /usr/bin), if installed. */
function findKubectl(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/bin"];
  for (const dir of dirs) {
    const file = path.join(dir, "kubectl");
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const kubectl = findKubectl();

function renderWithKubectl(dir: string): Obj[] {
  const text = execFileSync(kubectl!, ["kustomize", dir], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "pipe"] });
  return parseYaml(text, `kubectl kustomize ${relative(dir)}`);
}

/** The kustomization fields `build` renders; any other fails loudly instead of being skipped. */
const BUILD_FIELDS = new Set(["apiVersion", "kind", "namespace", "resources", "components", "replicas", "patches", "configMapGenerator", "labels"]);

/**
 * A kustomization rendered without kustomize: its resources (files, or folders rendered
 * the same way), its components' patches, ConfigMaps from `configMapGenerator` files (named
 * without the content hash), strategic-merge `patches` (by kind and name), `replicas`,
 * `labels` (metadata only) and `namespace`.
 */
function build(dir: string): Obj[] {
  const file = path.join(dir, "kustomization.yaml");
  const [kustomization] = parseYaml(readFileSync(file, "utf8"), relative(file));
  const unknown = Object.keys(kustomization!).filter((key) => !BUILD_FIELDS.has(key));
  if (unknown.length) throw new Error(`${relative(file)}: the test's renderer does not know ${unknown.join(", ")}: teach build() or keep to what it knows`);
  let out: Obj[] = [];
  for (const entry of kustomization!.resources ?? []) {
    const target = path.join(dir, entry);
    out.push(...(statSync(target).isDirectory() ? build(target) : parseYaml(readFileSync(target, "utf8"), relative(target))));
  }
  for (const component of kustomization!.components ?? []) out = applyComponent(out, path.join(dir, component));
  for (const generator of kustomization!.configMapGenerator ?? []) {
    if (Object.keys(generator).some((key) => key !== "name" && key !== "files")) throw new Error(`${relative(file)}: configMapGenerator ${generator.name}: only name and files are rendered here`);
    const data: Record<string, string> = {};
    for (const spec of generator.files as string[]) {
      const [key, source] = spec.includes("=") ? spec.split("=") as [string, string] : [path.basename(spec), spec];
      data[key] = readFileSync(path.join(dir, source), "utf8");
    }
    out.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: generator.name }, data });
  }
  out = applyPatches(out, dir, kustomization!.patches ?? []);
  for (const { name, count } of kustomization!.replicas ?? []) {
    const workloads = out.filter((resource) => ["StatefulSet", "Deployment", "ReplicaSet"].includes(resource.kind) && resource.metadata.name === name);
    if (workloads.length !== 1) throw new Error(`${relative(file)}: replicas of ${name} match ${workloads.length} workloads`);
    workloads[0]!.spec.replicas = count;
  }
  for (const label of kustomization!.labels ?? []) {
    if (label.includeSelectors || label.includeTemplates) throw new Error(`${relative(file)}: labels into selectors or templates are not rendered here`);
    out = out.map((resource) => ({ ...resource, metadata: { ...resource.metadata, labels: { ...resource.metadata.labels, ...label.pairs } } }));
  }
  if (kustomization!.namespace) out = out.map((resource) => ({ ...resource, metadata: { ...resource.metadata, namespace: kustomization!.namespace } }));
  return out;
}

/** `patches` entries of the kustomization in `dir` applied to `resources`. */
function applyPatches(resources: Obj[], dir: string, entries: Obj[]): Obj[] {
  const out = [...resources];
  for (const entry of entries) {
    if (entry.target || entry.options) throw new Error(`${relative(dir)}: patches with a target or options are not rendered here`);
    const patches = entry.path ? parseYaml(readFileSync(path.join(dir, entry.path), "utf8"), entry.path) : parseYaml(entry.patch, "inline patch");
    for (const patch of patches) {
      const index = out.findIndex((resource) => resource.kind === patch.kind && resource.metadata?.name === patch.metadata?.name);
      if (index < 0) throw new Error(`${relative(dir)}: the patch of ${patch.kind} ${patch.metadata?.name} matches nothing`);
      out[index] = merge(out[index], patch);
    }
  }
  return out;
}

/** A Kustomize Component of patches only, applied to `resources`. */
function applyComponent(resources: Obj[], dir: string): Obj[] {
  const file = path.join(dir, "kustomization.yaml");
  const [component] = parseYaml(readFileSync(file, "utf8"), relative(file));
  const unknown = Object.keys(component!).filter((key) => !["apiVersion", "kind", "patches"].includes(key));
  if (component!.kind !== "Component" || unknown.length) throw new Error(`${relative(file)}: only a Component of patches is rendered here`);
  return applyPatches(resources, dir, component!.patches ?? []);
}

/** The merge key of a list in a strategic merge patch, for the lists the manifests patch. */
function mergeKey(list: unknown[]): string | undefined {
  for (const key of ["name", "mountPath"]) {
    if (list.length > 0 && list.every((item) => item !== null && typeof item === "object" && key in (item as Obj))) return key;
  }
  return undefined;
}

/**
 * A strategic merge patch, for what the manifests use: maps merged, named lists merged by
 * name (as kustomize orders them: the patch's items first, then the others), `$patch: delete`.
 */
function merge(target: any, patch: any): any {
  if (Array.isArray(patch)) {
    const key = mergeKey(patch);
    if (!key || !Array.isArray(target)) return structuredClone(patch);
    const patched = patch.filter((item) => item.$patch !== "delete").map((item) => merge(target.find((existing) => existing?.[key] === item[key]), item));
    const named = new Set(patch.map((item) => item[key]));
    return [...patched, ...target.filter((existing) => !named.has(existing?.[key]))];
  }
  if (patch === null || typeof patch !== "object") return patch;
  const out: Obj = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$patch") continue;
    out[key] = merge(out[key], value);
  }
  return out;
}

/** kustomize names a generated ConfigMap `<name>-<hash>`: the same rendering without the hashes. */
function withoutHashes(resources: Obj[]): Obj[] {
  let text = JSON.stringify(resources);
  for (const resource of resources) {
    const name = resource.kind === "ConfigMap" ? resource.metadata.name as string : "";
    const match = /^(.*)-[a-z0-9]{10}$/.exec(name);
    if (match) text = text.replaceAll(`"${name}"`, `"${match[1]}"`);
  }
  return JSON.parse(text);
}

const idOf = (resource: Obj) => `${resource.kind}/${resource.metadata?.namespace ?? ""}/${resource.metadata?.name}`;

// ---- reading a rendering

interface Rendering {
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
function nodeSet(rendering: Rendering): { set: Obj; spec: Obj; node: Obj } {
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
function envOf(container: Obj, podName: string, rendering: Rendering): Map<string, string> {
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

function hostPort(address: string | undefined): { host: string; port: number } | undefined {
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
function nodeServices(rendering: Rendering): Obj[] {
  const prefix = `${nodeSet(rendering).set.metadata.name}-`;
  return rendering.resources.filter((resource) => resource.kind === "Service" && /^\d+$/.test(String(resource.spec?.selector?.[POD_NAME_LABEL] ?? "").slice(prefix.length)) && String(resource.spec.selector[POD_NAME_LABEL]).startsWith(prefix));
}

const SENTINEL_COMMAND = /--sentinel|redis-sentinel/;
const commandOf = (container: Obj): string => [...(container.command ?? []), ...(container.args ?? [])].join(" ");

/** The StatefulSets that run Redis (redis-server) with a Sentinel beside it. */
function redisSets(rendering: Rendering): Obj[] {
  return rendering.resources.filter((resource) => resource.kind === "StatefulSet").filter((resource) => {
    const commands = (resource.spec.template.spec.containers ?? []).map(commandOf);
    return commands.some((command: string) => /redis-server/.test(command) && !SENTINEL_COMMAND.test(command)) && commands.some((command: string) => SENTINEL_COMMAND.test(command));
  });
}

// ---- the rules, each a list of problems

type Check = (rendering: Rendering) => string[];

const checks: Record<string, Check> = {
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

// ---- the tests

const renderers: Array<[string, (dir: string) => Obj[]]> = [["the test's renderer", build]];
if (kubectl) renderers.unshift(["kubectl kustomize", renderWithKubectl]);

describe("deploy/k8s", () => {
  it("has an overlay for every region of deploy/regions.json, and for no other", () => {
    const overlays = readdirSync(overlaysDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    expect(regionIds.length).toBeGreaterThan(0);
    expect(overlays.sort()).toEqual([...regionIds].sort());
  });

  it("keeps base/regions.json equal to deploy/regions.json, byte for byte", () => {
    expect(readFileSync(path.join(k8sDir, "base/regions.json")).equals(regionsText)).toBe(true);
  });

  it("generates no Secret in any kustomization", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(path.join(dir, entry.name));
        else if (entry.name === "kustomization.yaml") files.push(path.join(dir, entry.name));
      }
    };
    walk(k8sDir);
    expect(files.length).toBeGreaterThan(regionIds.length);
    for (const file of files) expect(parseYaml(readFileSync(file, "utf8"), file)[0]!.secretGenerator, relative(file)).toBeUndefined();
  });

  /** The test's rendering is kubectl's, but for the generated ConfigMaps' hashes. */
  const expectSameRendering = (byTest: Obj[], byKubectl: Obj[], where: string) => {
    const kubectlResources = new Map(withoutHashes(byKubectl).map((resource) => [idOf(resource), resource]));
    const testResources = new Map(byTest.map((resource) => [idOf(resource), resource]));
    expect([...testResources.keys()].sort(), where).toEqual([...kubectlResources.keys()].sort());
    for (const [id, resource] of testResources) {
      if (!isDeepStrictEqual(resource, kubectlResources.get(id))) expect(resource, `${where}: ${id}`).toEqual(kubectlResources.get(id));
    }
  };

  it.skipIf(!kubectl)("renders each overlay with kubectl as the test's renderer does", () => {
    for (const region of regionIds) {
      const dir = path.join(overlaysDir, region);
      expectSameRendering(build(dir), renderWithKubectl(dir), region);
    }
  });

  describe("the without-voice component", () => {
    const overlay = path.join(overlaysDir, regionIds.at(-1)!);
    const component = path.join(k8sDir, "components/without-voice");
    const render = () => applyComponent(build(overlay), component);

    it("leaves a region without Janus that holds to every other rule", () => {
      const rendering: Rendering = { region: path.basename(overlay), resources: render() };
      for (const [rule, check] of Object.entries(checks)) {
        if (rule.startsWith("a Janus sidecar")) expect(check(rendering).join("\n")).toMatch(/no Janus sidecar/);
        else expect(check(rendering), rule).toEqual([]);
      }
      const { spec, node } = nodeSet(rendering);
      const env = envOf(node, "node-0", rendering);
      expect(env.get("TSUNAGI_VOICE_MODE")).toBe("off");
      expect([...env.keys()].filter((name) => name.startsWith("TSUNAGI_VOICE_JANUS"))).toEqual([]);
      expect(JSON.stringify(spec)).not.toMatch(/janus/i);
    });

    it.skipIf(!kubectl)("renders with kubectl as with the test's renderer", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-k8s-"));
      try {
        writeFileSync(path.join(dir, "kustomization.yaml"), `resources:\n  - ${path.relative(dir, overlay)}\ncomponents:\n  - ${path.relative(dir, component)}\n`);
        expectSameRendering(render(), renderWithKubectl(dir), "without-voice");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe.each(renderers)("rendered with %s", (_name, render) => {
    const renderings = new Map<string, Rendering>();
    beforeAll(() => {
      for (const region of regionIds) renderings.set(region, { region, resources: render(path.join(overlaysDir, region)) });
    });

    for (const [rule, check] of Object.entries(checks)) {
      it(`every region: ${rule}`, () => {
        const problems = regionIds.flatMap((region) => check(renderings.get(region)!).map((problem) => `${region}: ${problem}`));
        expect(problems).toEqual([]);
      });
    }

    it("every region: as many per-node Services as replicas, at least one", () => {
      for (const rendering of renderings.values()) {
        const replicas = nodeSet(rendering).set.spec.replicas;
        expect(replicas, rendering.region).toBeGreaterThanOrEqual(1);
        expect(nodeServices(rendering).length, rendering.region).toBe(replicas);
      }
    });

    it("regions apart: their own namespace, node ids and public names", () => {
      const namespaces = new Set<string>();
      const nodeIds = new Set<string>();
      const names = new Set<string>();
      let nodes = 0;
      for (const rendering of renderings.values()) {
        namespaces.add(rendering.resources[0]!.metadata.namespace);
        const { set, node } = nodeSet(rendering);
        for (let ordinal = 0; ordinal < set.spec.replicas; ordinal++) {
          const env = envOf(node, `${set.metadata.name}-${ordinal}`, rendering);
          nodeIds.add(env.get("TSUNAGI_NODE_ID")!);
          names.add(hostPort(env.get("TSUNAGI_PUBLIC_ADDRESS"))?.host ?? "");
          nodes++;
        }
      }
      expect(namespaces.size).toBe(regionIds.length);
      expect(nodeIds.size).toBe(nodes);
      expect(names.size).toBe(nodes);
    });
  });

  describe("the rules catch what they are for", () => {
    let tokyo: Rendering;
    beforeAll(() => {
      tokyo = { region: regionIds[0]!, resources: build(path.join(overlaysDir, regionIds[0]!)) };
    });
    /** The problems of `rule` on a copy of the first region's rendering after `fault`. */
    const after = (rule: string, fault: (rendering: Rendering) => void) => {
      const copy: Rendering = structuredClone(tokyo);
      expect(checks[rule]!(copy), "the unbroken rendering passes").toEqual([]);
      fault(copy);
      return checks[rule]!(copy).join("\n");
    };
    const node = (rendering: Rendering) => nodeSet(rendering).node;
    const envVar = (rendering: Rendering, name: string) => node(rendering).env.find((variable: Obj) => variable.name === name);

    it("a node Service missing, or one replica more than Services", () => {
      expect(after("one public LoadBalancer Service per node, at the node's public and gateway addresses", (rendering) => {
        rendering.resources = rendering.resources.filter((resource) => resource !== nodeServices(rendering).at(-1));
      })).toMatch(/per-node Services for/);
      expect(after("one public LoadBalancer Service per node, at the node's public and gateway addresses", (rendering) => {
        nodeSet(rendering).set.spec.replicas += 1;
      })).toMatch(/0 Services select pod/);
    });

    it("a public address its Service is not published at", () => {
      expect(after("one public LoadBalancer Service per node, at the node's public and gateway addresses", (rendering) => {
        envVar(rendering, "TSUNAGI_PUBLIC_ADDRESS").value = "$(POD_NAME).elsewhere.example:443";
      })).toMatch(/is published as/);
    });

    it("a secret given as a value, a password in a URL, a Secret object", () => {
      const rule = "no secret value in any manifest";
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_HTTP_METRICS_TOKEN").valueFrom = undefined;
        envVar(rendering, "TSUNAGI_HTTP_METRICS_TOKEN").value = "x".repeat(32);
      })).toMatch(/TSUNAGI_HTTP_METRICS_TOKEN is given a value/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = "redis://:hunter2@redis:6379/0";
      })).toMatch(/carries a password/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = "redis-sentinel://:hunter2@redis-0.redis-headless:26379,redis-1.redis-headless:26379,redis-2.redis-headless:26379/tsunagi";
      })).toMatch(/TSUNAGI_REDIS_URL carries a password/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = "redis-sentinel://tsunagi:hunter2@redis-0.redis-headless:26379/tsunagi";
      })).toMatch(/TSUNAGI_REDIS_URL carries a password/);
      expect(after(rule, (rendering) => {
        rendering.resources.push({ apiVersion: "v1", kind: "Secret", metadata: { name: "tsunagi-auth" }, stringData: { "auth-secret": "x" } });
      })).toMatch(/a Secret in the manifests/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_AUTH_SECRET_FILE").value = "/var/lib/tsunagi/audit/secret";
      })).toMatch(/TSUNAGI_AUTH_SECRET_FILE is given a value/);
    });

    it("a grace period that does not cover the drain", () => {
      expect(after("a preStop hook, and a grace period above it plus the drain timeout", (rendering) => {
        envVar(rendering, "TSUNAGI_DRAIN_TIMEOUT_MS").value = "60000";
      })).toMatch(/not above preStop \+ drainTimeoutMs/);
    });

    it("a liveness probe on /healthz, a wrong region id, an unknown setting", () => {
      expect(after("readiness on /healthz, liveness on a cheap route, both on the client port", (rendering) => {
        node(rendering).livenessProbe.httpGet.path = "/healthz";
      })).toMatch(/liveness probe/);
      expect(after("the node gets the overlay's region id, and node ids of the region's pattern", (rendering) => {
        envVar(rendering, "TSUNAGI_REGION_ID").value = "jp-elsewhere";
      })).toMatch(/TSUNAGI_REGION_ID is jp-elsewhere/);
      expect(after("the node sets only settings it has", (rendering) => {
        node(rendering).env.push({ name: "TSUNAGI_REGION", value: "jp-tokyo" });
      })).toMatch(/TSUNAGI_REGION is no setting/);
    });

    it("a container without limits or allowed to escalate; no Janus; no Sentinel", () => {
      expect(after("requests and limits of cpu and memory on every container, requests within limits", (rendering) => {
        delete nodeSet(rendering).spec.initContainers[0].resources.limits;
      })).toMatch(/no cpu request and limit/);
      expect(after("non-root, no privilege escalation, no capabilities, read-only root with an emptyDir /tmp", (rendering) => {
        node(rendering).securityContext.allowPrivilegeEscalation = true;
      })).toMatch(/privilege escalation/);
      expect(after("a Janus sidecar beside the node, on loopback, sharing its secrets through a Secret", (rendering) => {
        nodeSet(rendering).spec.initContainers = [];
      })).toMatch(/no Janus sidecar/);
      expect(after("Redis with Sentinel, and the node's Redis URL naming its sentinels", (rendering) => {
        const redis = rendering.resources.find((resource) => resource.kind === "StatefulSet" && resource.metadata.name !== nodeSet(rendering).set.metadata.name)!;
        redis.spec.template.spec.containers = redis.spec.template.spec.containers.filter((container: Obj) => !(container.command ?? []).includes("--sentinel"));
      })).toMatch(/0 StatefulSets run Redis with a Sentinel/);
    });

    it("a node Redis URL that does not follow the region's sentinels", () => {
      const rule = "Redis with Sentinel, and the node's Redis URL naming its sentinels";
      const sentinels = (...hosts: string[]) => `redis-sentinel://:$(REDIS_PASSWORD)@${hosts.join(",")}/tsunagi`;
      const redis = (rendering: Rendering) => redisSets(rendering)[0]!;
      // A plain URL: pinned to one server, through no failover.
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = "redis://:$(REDIS_PASSWORD)@redis-headless:6379/0";
      })).toMatch(/is not a redis-sentinel:\/\/ address/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = "redis-sentinel://:$(REDIS_PASSWORD)@redis-0.redis-headless:26379";
      })).toMatch(/TSUNAGI_REDIS_URL: .*masterName/);
      // A master name the sentinels do not monitor, on either side.
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = envVar(rendering, "TSUNAGI_REDIS_URL").value.replace(/\/tsunagi$/, "/mymaster");
      })).toMatch(/names master mymaster, the sentinels monitor tsunagi/);
      expect(after(rule, (rendering) => {
        const config = redis(rendering).spec.template.spec.initContainers.find((container: Obj) => container.env?.some((variable: Obj) => variable.name === "REDIS_MASTER_NAME"));
        config.env.find((variable: Obj) => variable.name === "REDIS_MASTER_NAME").value = "tsunagi-jp-tokyo";
      })).toMatch(/names master tsunagi, the sentinels monitor tsunagi-jp-tokyo/);
      // Too few sentinels, a pod the set does not have, another Service, the Redis port.
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = sentinels("redis-0.redis-headless:26379", "redis-1.redis-headless:26379", "redis-1.redis-headless:26379");
      })).toMatch(/names 2 sentinels of the set, not at least 3/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = sentinels("redis-0.redis-headless:26379", "redis-1.redis-headless:26379", "redis-3.redis-headless:26379");
      })).toMatch(/sentinel redis-3.redis-headless is no pod of StatefulSet redis/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = sentinels("redis-0.redis:26379", "redis-1.redis-headless:26379", "redis-2.redis-headless:26379");
      })).toMatch(/sentinel redis-0.redis is no pod/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = sentinels("redis-0.redis-headless:6379", "redis-1.redis-headless:6379", "redis-2.redis-headless:6379");
      })).toMatch(/sentinel redis-0.redis-headless:6379: Service redis-headless exposes the sentinel on 26379/);
      // The fully qualified names pass; so does the bare host (the default port).
      expect(after(rule, (rendering) => {
        const namespace = redis(rendering).metadata.namespace;
        envVar(rendering, "TSUNAGI_REDIS_URL").value = sentinels(`redis-0.redis-headless.${namespace}.svc:26379`, `redis-1.redis-headless.${namespace}.svc.cluster.local:26379`, "redis-2.redis-headless");
      })).toBe("");
      // No password, or one from another Secret than the Redis pods'.
      expect(after(rule, (rendering) => {
        envVar(rendering, "TSUNAGI_REDIS_URL").value = envVar(rendering, "TSUNAGI_REDIS_URL").value.replace(":$(REDIS_PASSWORD)@", "");
      })).toMatch(/carries no password/);
      expect(after(rule, (rendering) => {
        envVar(rendering, "REDIS_PASSWORD").valueFrom.secretKeyRef.name = "tsunagi-cluster";
      })).toMatch(/password is not \$\(a variable from Secret tsunagi-redis, key password\)/);
      // The headless Service gone, or not headless.
      expect(after(rule, (rendering) => {
        rendering.resources = rendering.resources.filter((resource) => !(resource.kind === "Service" && resource.metadata.name === "redis-headless"));
      })).toMatch(/no Service redis-headless/);
      expect(after(rule, (rendering) => {
        rendering.resources.find((resource) => resource.kind === "Service" && resource.metadata.name === "redis-headless")!.spec.clusterIP = "10.0.0.10";
      })).toMatch(/is not headless/);
    });

    it("a topology file other than deploy/regions.json", () => {
      expect(after("the node reads the topology of deploy/regions.json", (rendering) => {
        const map = rendering.resources.find((resource) => resource.kind === "ConfigMap" && resource.data?.["regions.json"] !== undefined)!;
        map.data["regions.json"] = map.data["regions.json"].replace("jp-tokyo", "jp-kyoto");
      })).toMatch(/not deploy\/regions.json/);
    });
  });
});

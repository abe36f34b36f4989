/**
 * deploy/prometheus and deploy/grafana held to the node: the alert rules' and the
 * dashboard's shape, the alerts issue 16 asks for, and every metric name they use is one
 * the node registers (server/observability/metrics.ts), as it is exposed (counters with
 * their `_total`, histograms as `_bucket`/`_sum`/`_count`). The scrape config's
 * relabelling is run on made-up pods. With promtool on the PATH (Debian's prometheus
 * package), promtool also checks the rules and the config, and runs a few alerts against
 * made-up series.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Registry, collectDefaultMetrics } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { NodeMetrics } from "../../../server/observability/metrics.ts";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const file = (relative: string) => path.join(root, relative);
const read = (relative: string) => readFileSync(file(relative), "utf8");

const ALERTS = "deploy/prometheus/alerts.yml";
const CONFIG = "deploy/prometheus/prometheus.yml";
const DASHBOARD = "deploy/grafana/tsunagi.json";
const DOCS = "docs/observability.md";

/** The alerts issue 16 asks for, by what they watch. */
const REQUIRED_ALERTS = [
  "TsunagiNodeDown", // a node down
  "TsunagiRegionDown", "TsunagiRegionWithoutCapacity", // a region without capacity
  "TsunagiRoomHandoffsAborted", "TsunagiFailoverAborted", // handoff and failover failures
  "TsunagiEStopRaised", // an e-stop raised
  "TsunagiTeleopLatencyOverBudget", "TsunagiTeleopCommandsPastDeadline", // teleop latency over budget
  "TsunagiAuditAppendFailed", "TsunagiAuditEntriesLost", // audit append failures
  "TsunagiRedisFailover", "TsunagiRedisNoPrimary", "TsunagiNodeRedisFailover", // Redis failover (as the pods and as the nodes see it)
];
/** The redis_exporter's metrics the Redis group reads (the pods' roles and replication; the node counts only its own connections). */
const REDIS_EXPORTER_METRICS = ["redis_up", "redis_instance_info", "redis_master_link_up", "redis_connected_slaves"];
/** The panels' subjects issue 16 asks for, by a metric each must use. */
const DASHBOARD_MUST_USE = [
  "up", "tsunagi_connections", "tsunagi_rooms", "tsunagi_messages_in_total", "tsunagi_messages_out_total",
  "tsunagi_errors_total", "tsunagi_room_handoffs_total", "tsunagi_cluster_ownership_events_total",
  "tsunagi_teleop_commands_total", "tsunagi_teleop_estops_total", "tsunagi_voice_participants", "tsunagi_voice_grants_total",
  "tsunagi_redis_connection_events_total",
];
const SEVERITIES = new Set(["critical", "warning", "info"]);

// --- the node's metric names ------------------------------------------------------------

/** Metric names and types as metrics.ts registers them, read from its source. */
function namesInMetricsSource(): { names: Set<string>; histograms: Set<string>; defaultsPrefix: string } {
  const source = read("server/observability/metrics.ts");
  const names = new Set([...source.matchAll(/"(tsunagi_[a-z0-9_]+)"/g)].map((match) => match[1]!));
  const histograms = new Set([...source.matchAll(/new Histogram\(\{\s*name:\s*"(tsunagi_[a-z0-9_]+)"/g)].map((match) => match[1]!));
  const prefix = /collectDefaultMetrics\(\{[^}]*prefix:\s*"([a-z_]+)"/.exec(source);
  return { names, histograms, defaultsPrefix: prefix?.[1] ?? "" };
}

/** prom-client's default metrics under `prefix`, as metrics.ts asks for them. */
async function defaultMetrics(prefix: string): Promise<Array<{ name: string; type: string }>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return (await registry.getMetricsAsJSON()).map(({ name, type }) => ({ name, type: String(type) }));
}

/** Every series name a node exposes: counters as registered (with `_total`), histograms' three series, gauges. */
async function exposedNames(): Promise<Set<string>> {
  const { names, histograms, defaultsPrefix } = namesInMetricsSource();
  const exposed = new Set<string>();
  const add = (name: string, histogram: boolean) => {
    if (histogram) for (const suffix of ["_bucket", "_sum", "_count"]) exposed.add(name + suffix);
    else exposed.add(name);
  };
  for (const name of names) add(name, histograms.has(name));
  for (const { name, type } of await defaultMetrics(defaultsPrefix)) add(name, type === "histogram");
  return exposed;
}

// --- PromQL: the metric names an expression reads --------------------------------------

const PROMQL_KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan", "start", "end"]);

/** The metric names `expr` selects: identifiers that are no function, keyword, label or string. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, " ") // label matchers
    .replace(/\[[^\]]*\]/g, " ") // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ") // label lists
    .replace(/\$\{[^}]*\}|\$\w+/g, " "); // Grafana's variables
  const names: string[] = [];
  for (const match of bare.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(match[1]!.toLowerCase())) names.push(match[1]!);
  }
  return names;
}

/** The names `exprs` read that are not in `known`. */
function unknownNames(exprs: string[], known: Set<string>): string[] {
  return [...new Set(exprs.flatMap(metricNames))].filter((name) => !known.has(name)).sort();
}

describe("the metric names of metrics.ts", () => {
  it("read from its source are exactly those a NodeMetrics registers, with their types", async () => {
    const { names, histograms, defaultsPrefix } = namesInMetricsSource();
    expect(defaultsPrefix).toBe("tsunagi_");
    const registered = await new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) }).registry.getMetricsAsJSON();
    const defaults = new Set((await defaultMetrics(defaultsPrefix)).map(({ name }) => name));
    const own = registered.filter(({ name }) => !defaults.has(name));
    expect([...names].sort()).toEqual(own.map(({ name }) => name).sort());
    expect([...histograms].sort()).toEqual(own.filter(({ type }) => String(type) === "histogram").map(({ name }) => name).sort());
    expect(names.size).toBeGreaterThan(40);
  });

  it("the check finds a wrong name, a gauge read as a counter and a bare histogram, and passes labels, functions and numbers", async () => {
    const known = await exposedNames();
    expect(metricNames('histogram_quantile(0.99, sum by (le, outcome) (rate(tsunagi_room_handoff_seconds_bucket{job="n", code=~"AUDIT_.*"}[5m]))) > 1e-3 and on (node) up offset 1h'))
      .toEqual(["tsunagi_room_handoff_seconds_bucket", "up"]);
    expect(metricNames('sum by (region) (rate(tsunagi_messages_in_total{region=~"$region"}[$__rate_interval])) / bool 2')).toEqual(["tsunagi_messages_in_total"]);
    expect(unknownNames([
      "increase(tsunagi_room_handoff_total[5m])", // the registered name is tsunagi_room_handoffs_total
      "rate(tsunagi_connections_total[5m])", // a gauge
      "tsunagi_room_handoff_seconds", // a histogram is read through its _bucket, _sum, _count
      "redis_up", // not the node's
      "sum(tsunagi_room_handoff_seconds_count) + tsunagi_teleop_estops_total + tsunagi_nodejs_eventloop_lag_p99_seconds + up",
    ], new Set([...known, "up"]))).toEqual(["redis_up", "tsunagi_connections_total", "tsunagi_room_handoff_seconds", "tsunagi_room_handoff_total"]);
  });
});

// --- alerts.yml ---------------------------------------------------------------------------

interface Rule { alert?: string; record?: string; expr?: unknown; for?: unknown; labels?: Record<string, unknown>; annotations?: Record<string, unknown> }
const alertsFile = parse(read(ALERTS)) as { groups?: Array<{ name?: unknown; rules?: Rule[] }> };
const rules = (alertsFile.groups ?? []).flatMap((group) => group.rules ?? []);

describe(ALERTS, () => {
  it("is a rule file: named groups of alerts with an expr, a for, a severity and a summary", () => {
    expect(Object.keys(alertsFile)).toEqual(["groups"]);
    expect(alertsFile.groups!.length).toBeGreaterThan(0);
    const groupNames = alertsFile.groups!.map((group) => group.name);
    expect(new Set(groupNames).size).toBe(groupNames.length);
    for (const group of alertsFile.groups!) {
      expect(typeof group.name === "string" && group.name.length > 0, `group name ${String(group.name)}`).toBe(true);
      expect(Object.keys(group).every((key) => ["name", "rules", "interval"].includes(key)), `keys of group ${String(group.name)}`).toBe(true);
      expect(group.rules?.length, `rules of ${String(group.name)}`).toBeGreaterThan(0);
      for (const rule of group.rules!) {
        const name = String(rule.alert);
        expect(rule.alert, `an alert in ${String(group.name)}`).toMatch(/^Tsunagi[A-Z]\w+$/);
        expect(Object.keys(rule).every((key) => ["alert", "expr", "for", "keep_firing_for", "labels", "annotations"].includes(key)), `keys of ${name}`).toBe(true);
        expect(typeof rule.expr === "string" && rule.expr.trim().length > 0, `expr of ${name}`).toBe(true);
        expect(rule.for, `for of ${name}`).toMatch(/^\d+[smh]$/);
        expect(SEVERITIES.has(String(rule.labels?.severity)), `severity of ${name}: ${String(rule.labels?.severity)}`).toBe(true);
        expect(typeof rule.annotations?.summary === "string" && rule.annotations.summary.length > 0, `summary of ${name}`).toBe(true);
        expect(typeof rule.annotations?.description === "string" && rule.annotations.description.length > 0, `description of ${name}`).toBe(true);
      }
    }
    const names = rules.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it("has every alert the issue asks for", () => {
    const names = new Set(rules.map((rule) => rule.alert));
    expect(REQUIRED_ALERTS.filter((name) => !names.has(name))).toEqual([]);
  });

  it("reads only metrics the node registers, `up`, and the redis_exporter's in the Redis group", async () => {
    const known = await exposedNames();
    known.add("up");
    const nodeRules = alertsFile.groups!.filter((group) => group.name !== "tsunagi-redis").flatMap((group) => group.rules!);
    expect(unknownNames(nodeRules.map((rule) => String(rule.expr)), known)).toEqual([]);
    const redisRules = alertsFile.groups!.find((group) => group.name === "tsunagi-redis")?.rules ?? [];
    expect(unknownNames(redisRules.map((rule) => String(rule.expr)), new Set([...known, ...REDIS_EXPORTER_METRICS]))).toEqual([]);
    // The node's rules do read node metrics (the check above is not vacuous).
    expect(nodeRules.flatMap((rule) => metricNames(String(rule.expr))).filter((name) => name.startsWith("tsunagi_")).length).toBeGreaterThan(10);
  });

  it("points each alert at its runbook entry in docs/observability.md", () => {
    const headings = new Set(read(DOCS).split("\n").filter((line) => line.startsWith("#### ")).map((line) => line.slice(5).trim()));
    for (const rule of rules) {
      expect(rule.annotations?.runbook, `runbook of ${rule.alert}`).toBe(`${DOCS}#${String(rule.alert).toLowerCase()}`);
      expect(headings.has(String(rule.alert)), `heading "#### ${rule.alert}" in ${DOCS}`).toBe(true);
    }
  });
});

// --- the Grafana dashboard ------------------------------------------------------------------

interface Panel { id?: unknown; type?: string; title?: string; targets?: Array<{ expr?: unknown; datasource?: { uid?: string } }>; panels?: Panel[]; gridPos?: { x: number; y: number; w: number; h: number } }
const dashboard = JSON.parse(read(DASHBOARD)) as {
  schemaVersion: number; uid: string; title: string; panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: unknown; definition?: string; datasource?: { uid?: string } }> };
};
/** Every panel, those inside rows too. */
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
/** Rows group panels and query nothing. */
const dataPanels = panels.filter((panel) => panel.type !== "row");

describe(DASHBOARD, () => {
  it("is a dashboard of schema 36 or later, with datasource, region and node variables", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBeTruthy();
    expect(dashboard.title).toBeTruthy();
    const variables = Object.fromEntries(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect(variables.datasource).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const name of ["region", "node"]) {
      expect(variables[name]).toMatchObject({ type: "query", datasource: { uid: "${datasource}" } });
      expect(variables[name]!.definition).toMatch(new RegExp(`^label_values\\(.+, ${name}\\)$`));
    }
  });

  it("has unique panel ids, and every panel a query", () => {
    const ids = panels.map((panel) => panel.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dataPanels.length).toBeGreaterThan(20);
    for (const panel of dataPanels) {
      expect(panel.targets?.length, `targets of "${panel.title}"`).toBeGreaterThan(0);
      for (const target of panel.targets!) {
        expect(typeof target.expr === "string" && target.expr.trim().length > 0, `expr in "${panel.title}"`).toBe(true);
        expect(target.datasource?.uid, `datasource of "${panel.title}"`).toBe("${datasource}");
      }
      expect(panel.gridPos!.x + panel.gridPos!.w, `width of "${panel.title}"`).toBeLessThanOrEqual(24);
    }
  });

  it("reads only metrics the node registers, and `up`", async () => {
    const known = await exposedNames();
    known.add("up");
    const exprs = [
      ...dataPanels.flatMap((panel) => panel.targets!.map((target) => String(target.expr))),
      ...dashboard.templating.list.filter((variable) => variable.type === "query").map((variable) => String(variable.definition).replace(/^label_values\((.*), \w+\)$/, "$1")),
    ];
    expect(unknownNames(exprs, known)).toEqual([]);
    const used = new Set(exprs.flatMap(metricNames));
    expect(DASHBOARD_MUST_USE.filter((name) => !used.has(name))).toEqual([]);
  });
});

// --- docs/observability.md --------------------------------------------------------------------

describe(DOCS, () => {
  it("lists every metric the node registers", () => {
    const docs = read(DOCS);
    const { names } = namesInMetricsSource();
    expect([...names].filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
  });
});

// --- prometheus.yml ---------------------------------------------------------------------------

interface RelabelConfig { source_labels?: string[]; separator?: string; regex?: string; target_label?: string; replacement?: string; action?: string }
interface ScrapeConfig { job_name: string; metrics_path?: string; scheme?: string; authorization?: { credentials_file?: string }; kubernetes_sd_configs?: Array<{ role: string; selectors?: Array<{ role: string; label?: string }> }>; relabel_configs?: RelabelConfig[] }
const config = parse(read(CONFIG)) as { rule_files: string[]; scrape_configs: ScrapeConfig[] };
const nodeJob = config.scrape_configs.find((job) => job.job_name === "tsunagi-node")!;

/** Prometheus' relabelling (replace, keep, drop) of one target's labels; undefined when dropped. */
function relabel(labels: Record<string, string>, configs: RelabelConfig[]): Record<string, string> | undefined {
  const out = { ...labels };
  for (const step of configs) {
    const value = (step.source_labels ?? []).map((name) => out[name] ?? "").join(step.separator ?? ";");
    const match = new RegExp(`^(?:${step.regex ?? "(.*)"})$`).exec(value);
    const action = step.action ?? "replace";
    if (action === "keep" && !match) return undefined;
    if (action === "drop" && match) return undefined;
    if (action === "replace" && match) {
      const result = (step.replacement ?? "$1").replace(/\$\{(\d+)\}|\$(\d+)/g, (_, braced, plain) => match[Number(braced ?? plain)] ?? "");
      if (result) out[step.target_label!] = result;
      else delete out[step.target_label!];
    }
  }
  return out;
}

describe(CONFIG, () => {
  it("loads alerts.yml and scrapes the nodes' /metrics over https with the metrics token", () => {
    expect(config.rule_files).toEqual(["alerts.yml"]);
    expect(nodeJob).toMatchObject({ scheme: "https", metrics_path: "/metrics", authorization: { credentials_file: "/etc/prometheus/secrets/tsunagi-metrics-token" } });
    expect(nodeJob.kubernetes_sd_configs).toEqual([{ role: "pod", selectors: [{ role: "pod", label: "app.kubernetes.io/name=tsunagi-node" }] }]);
  });

  const pod = (over: Record<string, string> = {}) => ({
    __address__: "10.1.2.3:2567",
    __meta_kubernetes_namespace: "tsunagi-jp-tokyo",
    __meta_kubernetes_pod_name: "node-1",
    __meta_kubernetes_pod_phase: "Running",
    __meta_kubernetes_pod_label_app_kubernetes_io_name: "tsunagi-node",
    __meta_kubernetes_pod_container_name: "node",
    __meta_kubernetes_pod_container_port_name: "https",
    __meta_kubernetes_pod_container_port_number: "2567",
    ...over,
  });

  it("labels each node's target with its region and node, and scrapes it by its stable name", () => {
    expect(relabel(pod(), nodeJob.relabel_configs!)).toMatchObject({
      __address__: "node-1.node-headless.tsunagi-jp-tokyo.svc:2567", region: "jp-tokyo", node: "node-1", namespace: "tsunagi-jp-tokyo",
    });
    expect(relabel(pod({ __meta_kubernetes_pod_label_tsunagi_io_region: "jp-osaka" }), nodeJob.relabel_configs!)).toMatchObject({ region: "jp-osaka", node: "node-1" });
  });

  it("scrapes no other port, container, finished pod or app", () => {
    const others: Array<Record<string, string>> = [
      { __meta_kubernetes_pod_container_port_name: "gateway", __meta_kubernetes_pod_container_port_number: "2568" },
      { __meta_kubernetes_pod_container_name: "janus", __meta_kubernetes_pod_container_port_name: "" },
      { __meta_kubernetes_pod_phase: "Failed" },
      { __meta_kubernetes_pod_label_app_kubernetes_io_name: "tsunagi-redis" },
    ];
    for (const other of others) expect(relabel(pod(other), nodeJob.relabel_configs!), JSON.stringify(other)).toBeUndefined();
  });

  const statefulSet = "deploy/k8s/base/node-statefulset.yaml";
  it.skipIf(!existsSync(file(statefulSet)))("matches the nodes' StatefulSet: its pod label, container, port and headless Service", () => {
    const set = parse(read(statefulSet)) as {
      spec: { serviceName: string; template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ name: string; ports: Array<{ name: string; containerPort: number }> }> } } };
    };
    expect(set.spec.template.metadata.labels["app.kubernetes.io/name"]).toBe("tsunagi-node");
    const node = set.spec.template.spec.containers.find((container) => container.name === "node");
    const https = node?.ports.find((port) => port.name === "https");
    expect(https).toBeDefined();
    const target = relabel(pod({ __meta_kubernetes_pod_container_port_number: String(https!.containerPort) }), nodeJob.relabel_configs!);
    expect(target?.__address__).toBe(`node-1.${set.spec.serviceName}.tsunagi-jp-tokyo.svc:${https!.containerPort}`);
  });
});

// --- promtool ---------------------------------------------------------------------------------

const promtool = spawnSync("promtool", ["--version"], { encoding: "utf8" }).status === 0;
const work = promtool ? mkdtempSync(path.join(tmpdir(), "tsunagi-promtool-")) : "";
afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

function runPromtool(args: string[], cwd = root): { status: number | null; output: string } {
  const result = spawnSync("promtool", args, { cwd, encoding: "utf8", timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Labels of a node's series as the scrape config sets them. */
function nodeSeries(metric: string, labels: Record<string, string> = {}, region = "jp-tokyo", node = "node-0"): string {
  const all = { job: "tsunagi-node", instance: `${node}.node-headless.tsunagi-${region}.svc:2567`, namespace: `tsunagi-${region}`, region, node, ...labels };
  return `${metric}{${Object.entries(all).map(([key, value]) => `${key}="${value}"`).join(", ")}}`;
}
const nodeLabels = (region = "jp-tokyo", node = "node-0") => ({ job: "tsunagi-node", instance: `${node}.node-headless.tsunagi-${region}.svc:2567`, namespace: `tsunagi-${region}`, region, node });
const redisLabels = (pod: string, role: string) => ({ job: "tsunagi-redis", namespace: "tsunagi-jp-tokyo", region: "jp-tokyo", pod, role });
const redisSeries = (pod: string, role: string) => `redis_instance_info{${Object.entries(redisLabels(pod, role)).map(([key, value]) => `${key}="${value}"`).join(", ")}}`;

/** Alerts against made-up series: promtool's rule unit tests (`_` is a missing sample). */
const ruleTests = [
  {
    interval: "1m",
    input_series: [
      { series: nodeSeries("up"), values: "1x30" },
      { series: nodeSeries("up", {}, "jp-tokyo", "node-1"), values: "1 1 0x28" },
      { series: nodeSeries("up", {}, "jp-osaka"), values: "1x4 _x26" }, // its pod gone from discovery
      { series: nodeSeries("up", {}, "jp-sapporo"), values: "0x30" },
    ],
    alert_rule_test: [
      { eval_time: "1m", alertname: "TsunagiNodeDown", exp_alerts: [] },
      { eval_time: "10m", alertname: "TsunagiNodeDown", exp_alerts: [
        { exp_labels: { severity: "critical", ...nodeLabels("jp-tokyo", "node-1") } },
        { exp_labels: { severity: "critical", ...nodeLabels("jp-sapporo") } },
      ] },
      { eval_time: "15m", alertname: "TsunagiRegionDown", exp_alerts: [
        { exp_labels: { severity: "critical", region: "jp-osaka" } },
        { exp_labels: { severity: "critical", region: "jp-sapporo" } },
      ] },
    ],
  },
  {
    interval: "1m",
    input_series: [
      // First e-stop by an operator after the node's start (a new series), one more from the device, none from a supervisor since.
      { series: nodeSeries("tsunagi_teleop_estops_total", { source: "operator" }), values: "_x10 1x20" },
      { series: nodeSeries("tsunagi_teleop_estops_total", { source: "device" }), values: "1x10 2x20" },
      { series: nodeSeries("tsunagi_teleop_estops_total", { source: "supervisor" }), values: "1x30" },
      { series: nodeSeries("tsunagi_errors_total", { code: "AUDIT_WRITE_FAILED", source: "teleop" }), values: "_x10 1x20" },
      { series: nodeSeries("tsunagi_errors_total", { code: "RATE_LIMITED", source: "flood" }), values: "1+1x30" },
      { series: nodeSeries("tsunagi_room_handoffs_total", { reason: "drain", outcome: "aborted" }), values: "_x10 1x20" },
      { series: nodeSeries("tsunagi_room_handoffs_total", { reason: "failover", outcome: "aborted" }), values: "_x10 1x20" },
      { series: nodeSeries("tsunagi_room_handoffs_total", { reason: "drain", outcome: "complete" }), values: "1+1x30" },
    ],
    alert_rule_test: [
      { eval_time: "12m", alertname: "TsunagiEStopRaised", exp_alerts: [
        { exp_labels: { severity: "warning", region: "jp-tokyo", node: "node-0", source: "operator" } },
        { exp_labels: { severity: "warning", region: "jp-tokyo", node: "node-0", source: "device" } },
      ] },
      { eval_time: "25m", alertname: "TsunagiEStopRaised", exp_alerts: [] },
      { eval_time: "12m", alertname: "TsunagiAuditAppendFailed", exp_alerts: [{ exp_labels: { severity: "critical", region: "jp-tokyo", node: "node-0" } }] },
      { eval_time: "12m", alertname: "TsunagiRoomHandoffsAborted", exp_alerts: [{ exp_labels: { severity: "warning", region: "jp-tokyo", node: "node-0", reason: "drain" } }] },
      { eval_time: "12m", alertname: "TsunagiFailoverAborted", exp_alerts: [{ exp_labels: { severity: "critical", region: "jp-tokyo", node: "node-0" } }] },
    ],
  },
  {
    interval: "1m",
    input_series: [
      { series: nodeSeries("up"), values: "1x30" },
      { series: nodeSeries("tsunagi_connections"), values: "100x30" },
      { series: nodeSeries("tsunagi_errors_total", { code: "OVERLOADED", source: "matchmake" }), values: "_x5 1+1x25" },
      { series: nodeSeries("up", {}, "jp-sendai"), values: "1x30" },
      { series: nodeSeries("tsunagi_connections", {}, "jp-sendai"), values: "12000x30" },
      { series: nodeSeries("tsunagi_teleop_commands_total", { status: "APPLIED", origin: "adapter" }), values: "0+600x30" },
      { series: nodeSeries("tsunagi_teleop_commands_total", { status: "EXPIRED", origin: "adapter" }), values: "0+30x30" },
    ],
    alert_rule_test: [
      { eval_time: "10m", alertname: "TsunagiRegionWithoutCapacity", exp_alerts: [
        { exp_labels: { severity: "critical", region: "jp-tokyo" } },
        { exp_labels: { severity: "critical", region: "jp-sendai" } },
      ] },
      { eval_time: "10m", alertname: "TsunagiNodeOverloaded", exp_alerts: [{ exp_labels: { severity: "warning", region: "jp-sendai", node: "node-0" } }] },
      { eval_time: "10m", alertname: "TsunagiTeleopCommandsPastDeadline", exp_alerts: [{ exp_labels: { severity: "warning", region: "jp-tokyo", node: "node-0" } }] },
    ],
  },
  {
    interval: "1m",
    input_series: [
      // redis-0, the primary, is lost at 5m; the sentinels promote redis-1 at 6m.
      { series: redisSeries("redis-0", "master"), values: "1x5 _x20" },
      { series: redisSeries("redis-1", "slave"), values: "1x5 _x20" },
      { series: redisSeries("redis-1", "master"), values: "_x6 1x20" },
      { series: redisSeries("redis-2", "slave"), values: "1x26" },
    ],
    alert_rule_test: [
      { eval_time: "4m", alertname: "TsunagiRedisFailover", exp_alerts: [] },
      { eval_time: "9m", alertname: "TsunagiRedisFailover", exp_alerts: [{ exp_labels: { severity: "warning", region: "jp-tokyo", pod: "redis-1" } }] },
    ],
  },
  {
    interval: "1m",
    input_series: [
      // node-0's region connection is lost at 5m and back on a new primary at 7m (both series new then).
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "region", event: "lost" }), values: "_x5 1x25" },
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "region", event: "failover" }), values: "_x7 1x23" },
      // node-0's cluster connection came back once before, and is lost again from 10m.
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "cluster", event: "lost" }), values: "1x9 2x20" },
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "cluster", event: "back" }), values: "1x30" },
      // node-1's region connection is lost from 2m, with no back since its start.
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "region", event: "lost" }, "jp-tokyo", "node-1"), values: "_x2 1x27" },
      // node-1's cluster connection fails over a second time at 10m-11m.
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "cluster", event: "lost" }, "jp-tokyo", "node-1"), values: "1x9 2x20" },
      { series: nodeSeries("tsunagi_redis_connection_events_total", { connection: "cluster", event: "failover" }, "jp-tokyo", "node-1"), values: "1x10 2x19" },
    ],
    alert_rule_test: [
      { eval_time: "9m", alertname: "TsunagiNodeRedisFailover", exp_alerts: [{ exp_labels: { severity: "warning", region: "jp-tokyo", node: "node-0", connection: "region" } }] },
      { eval_time: "14m", alertname: "TsunagiNodeRedisFailover", exp_alerts: [{ exp_labels: { severity: "warning", region: "jp-tokyo", node: "node-1", connection: "cluster" } }] },
      { eval_time: "25m", alertname: "TsunagiNodeRedisFailover", exp_alerts: [] },
      { eval_time: "8m", alertname: "TsunagiNodeRedisUnreachable", exp_alerts: [{ exp_labels: { severity: "critical", region: "jp-tokyo", node: "node-1", connection: "region" } }] },
      { eval_time: "15m", alertname: "TsunagiNodeRedisUnreachable", exp_alerts: [
        { exp_labels: { severity: "critical", region: "jp-tokyo", node: "node-0", connection: "cluster" } },
        { exp_labels: { severity: "critical", region: "jp-tokyo", node: "node-1", connection: "region" } },
      ] },
    ],
  },
];

describe.skipIf(!promtool)("promtool", () => {
  it("checks the alert rules", () => {
    const result = runPromtool(["check", "rules", ALERTS]);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("checks the scrape config (its secrets' files and Kubernetes discovery made up where this promtool lacks them)", () => {
    const direct = runPromtool(["check", "config", CONFIG]);
    if (direct.status !== 0) {
      // Debian's promtool is built without Kubernetes discovery, and the secrets' files exist only in the cluster.
      expect(direct.output).toMatch(/kubernetes_sd_configs not found|no such file or directory/);
      const copy = parse(read(CONFIG)) as typeof config & { scrape_configs: Array<ScrapeConfig & { static_configs?: unknown; tls_config?: { ca_file?: string } }> };
      writeFileSync(path.join(work, "token"), "t".repeat(32));
      writeFileSync(path.join(work, "ca.crt"), "");
      for (const job of copy.scrape_configs) {
        delete job.kubernetes_sd_configs;
        job.static_configs = [{ targets: ["127.0.0.1:9"] }];
        if (job.authorization?.credentials_file) job.authorization.credentials_file = path.join(work, "token");
        if (job.tls_config?.ca_file) job.tls_config.ca_file = path.join(work, "ca.crt");
      }
      writeFileSync(path.join(work, "prometheus.yml"), stringify(copy));
      writeFileSync(path.join(work, "alerts.yml"), read(ALERTS));
      const checked = runPromtool(["check", "config", "prometheus.yml"], work);
      expect(checked.status, checked.output).toBe(0);
      expect(checked.output).toContain(`SUCCESS: ${rules.length} rules found`);
    }
  });

  it("fires the alerts on made-up series, the first count of a new series included", () => {
    // The expressions are under test, not the wording: the copy drops the annotations.
    const bare = parse(read(ALERTS)) as typeof alertsFile;
    for (const rule of bare.groups!.flatMap((group) => group.rules!)) delete rule.annotations;
    writeFileSync(path.join(work, "rules.yml"), stringify(bare));
    writeFileSync(path.join(work, "tests.yml"), stringify({ rule_files: ["rules.yml"], evaluation_interval: "1m", tests: ruleTests }));
    const result = runPromtool(["test", "rules", "tests.yml"], work);
    expect(result.status, result.output).toBe(0);
  });
});

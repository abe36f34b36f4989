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
 * a small renderer of the kustomize features the overlays use (test/fixtures/kustomize.ts),
 * so a machine without kubectl checks the same rules; where both run, they must agree.
 *
 * Each rule is a function returning its problems (`checks`, in k8sRules.ts), so the last
 * tests can show that each one catches the fault it is for.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { applyComponent, build, idOf, kubectl, parseYaml, relative, renderWithKubectl, withoutHashes, type Obj } from "../../fixtures/kustomize.ts";
import { checks, envOf, hostPort, k8sDir, nodeServices, nodeSet, overlaysDir, redisSets, regionIds, regionsText, type Rendering } from "./k8sRules.ts";

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

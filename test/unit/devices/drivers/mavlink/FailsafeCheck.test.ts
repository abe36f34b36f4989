/**
 * checkFailsafeParameters: the vehicle's own link-loss failsafe must agree with the
 * adapter's safety model; each disagreement is one line saying what to set.
 */
import { describe, expect, it } from "vitest";
import { checkFailsafeParameters, SAFE_GCS_FAILSAFE_ACTIONS } from "../../../../../devices/drivers/mavlink/FailsafeCheck.ts";

const limits = { gcsSystemId: 255, maxGcsTimeoutS: 5, maxGuidedTimeoutS: 3 };
const good = { SYSID_MYGCS: 255, FS_GCS_ENABLE: 5, FS_GCS_TIMEOUT: 5, GUID_TIMEOUT: 3 };

describe("checkFailsafeParameters", () => {
  it("has nothing to say when all four agree, for every safe FS_GCS_ENABLE action", () => {
    expect(checkFailsafeParameters(good, limits)).toEqual([]);
    for (const action of [1, 3, 4, 5, 7]) {
      expect(checkFailsafeParameters({ ...good, FS_GCS_ENABLE: action }, limits)).toEqual([]);
    }
    expect(Object.keys(SAFE_GCS_FAILSAFE_ACTIONS).map(Number)).toEqual([1, 3, 4, 5, 7]);
  });

  it("refuses FS_GCS_ENABLE 0 (disabled), 2 and 6 (carry on a mission), listing the allowed values", () => {
    const [disabled, ...rest] = checkFailsafeParameters({ ...good, FS_GCS_ENABLE: 0 }, limits);
    expect(rest).toEqual([]);
    expect(disabled).toMatch(/^FS_GCS_ENABLE is 0 \(disabled\): set one of /);
    for (const [value, what] of Object.entries(SAFE_GCS_FAILSAFE_ACTIONS)) expect(disabled).toContain(`${value} (${what})`);

    const [mission] = checkFailsafeParameters({ ...good, FS_GCS_ENABLE: 2 }, limits);
    expect(mission).toMatch(/^FS_GCS_ENABLE is 2: set one of 1 \(return to launch\), 3 .*, 7 \(brake, else land\)$/);
    expect(mission).not.toContain("disabled");
    expect(checkFailsafeParameters({ ...good, FS_GCS_ENABLE: 6 }, limits)).toHaveLength(1);
  });

  it("refuses FS_GCS_TIMEOUT above the limit (and 0), naming the limit", () => {
    expect(checkFailsafeParameters({ ...good, FS_GCS_TIMEOUT: 5.5 }, limits)).toEqual([expect.stringMatching(/^FS_GCS_TIMEOUT is 5.5 s: set at most 5 s/)]);
    expect(checkFailsafeParameters({ ...good, FS_GCS_TIMEOUT: 10 }, { ...limits, maxGcsTimeoutS: 10 })).toEqual([]);
    expect(checkFailsafeParameters({ ...good, FS_GCS_TIMEOUT: 0 }, limits)).toEqual([expect.stringMatching(/^FS_GCS_TIMEOUT is 0 s/)]);
  });

  it("refuses GUID_TIMEOUT above the limit, naming the limit", () => {
    expect(checkFailsafeParameters({ ...good, GUID_TIMEOUT: 4 }, limits)).toEqual([expect.stringMatching(/^GUID_TIMEOUT is 4 s: set at most 3 s/)]);
  });

  it("refuses SYSID_MYGCS other than the adapter's GCS system id, naming both", () => {
    const problems = checkFailsafeParameters({ ...good, SYSID_MYGCS: 42 }, limits);
    expect(problems).toEqual([expect.stringMatching(/^SYSID_MYGCS is 42 but this adapter's GCS system id is 255/)]);
    expect(checkFailsafeParameters({ ...good, SYSID_MYGCS: 42 }, { ...limits, gcsSystemId: 42 })).toEqual([]);
  });

  it("names a parameter the vehicle did not report, and still checks the others", () => {
    const { GUID_TIMEOUT: _missing, ...withoutGuided } = good;
    expect(checkFailsafeParameters(withoutGuided, limits)).toEqual([expect.stringMatching(/did not report GUID_TIMEOUT:/)]);
    const problems = checkFailsafeParameters({ FS_GCS_ENABLE: 0 }, limits);
    expect(problems[0]).toMatch(/did not report SYSID_MYGCS, FS_GCS_TIMEOUT, GUID_TIMEOUT/);
    expect(problems[1]).toMatch(/^FS_GCS_ENABLE is 0/);
    expect(checkFailsafeParameters({}, limits)).toHaveLength(1);
  });

  it("reports every disagreement at once, one line each", () => {
    expect(checkFailsafeParameters({ SYSID_MYGCS: 1, FS_GCS_ENABLE: 0, FS_GCS_TIMEOUT: 30, GUID_TIMEOUT: 10 }, limits).map((line) => line.split(" ")[0]))
      .toEqual(["SYSID_MYGCS", "FS_GCS_ENABLE", "FS_GCS_TIMEOUT", "GUID_TIMEOUT"]);
  });
});

// A valid config document (config.yaml as an object) for tests that need one but test something else.
import { poolConfig } from "../../tools/simulator.ts";

export const TEST_COMPARTMENT_OCID = "ocid1.compartment.oc1..aaaaaaaacompartment";

/** A pool entry that passes every rule of core/configDocument.ts; `overrides` replace or add keys. */
export function testPool(
  instancePoolId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...poolConfig(instancePoolId, TEST_COMPARTMENT_OCID, "us-ashburn-1"),
    scheduler_max_instances: 3,
    ...overrides,
  };
}

/** A config document with one valid pool per OCID. */
export function testConfig(...instancePoolIds: string[]): { pools: Record<string, unknown>[] } {
  return { pools: instancePoolIds.map((id) => testPool(id)) };
}

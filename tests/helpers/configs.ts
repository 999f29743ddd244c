// A valid config document (config.yaml as an object) for tests that need one but test something else.
export const TEST_COMPARTMENT_OCID = "ocid1.compartment.oc1..aaaaaaaacompartment";

/** A pool entry that passes every rule of core/configDocument.ts; `overrides` replace or add keys. */
export function testPool(
  instancePoolId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    instance_pool_id: instancePoolId,
    compartment_id: TEST_COMPARTMENT_OCID,
    region: "us-ashburn-1",
    monitoring_method: "oci",
    cpu_threshold: { min: 30, max: 75 },
    ram_threshold: { min: 20, max: 75 },
    scaling_limits: { min: 1, max: 10 },
    scheduler_max_instances: 3,
    schedules: [{ start_time: "05:30", end_time: "05:50" }],
    ...overrides,
  };
}

/** A config document with one valid pool per OCID. */
export function testConfig(...instancePoolIds: string[]): { pools: Record<string, unknown>[] } {
  return { pools: instancePoolIds.map((id) => testPool(id)) };
}

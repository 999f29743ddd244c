// Metric samples: what the agent passes to sendMetrics (camelCase) and what goes on the wire, checked the
// way the server will check them so a mistake throws at the call, naming the field.

export interface MetricSample {
  instancePoolId: string;
  cpuUtil: number;
  memoryUtil: number;
  instanceCount: number;
  scalingEvent?: boolean;
  scalingDirection?: "UP" | "DOWN" | "up" | "down" | null;
  fromCount?: number;
  toCount?: number;
  reason?: string;
  /** When the sample was taken. Default: the time of the call. */
  ts?: Date | string | number;
}

/** A sample as POST /nodes/{id}/metrics takes it. */
export interface WireSample {
  instance_pool_id: string;
  ts: string;
  cpu_util: number;
  memory_util: number;
  instance_count: number;
  scaling_event: boolean;
  scaling_direction: "UP" | "DOWN" | null;
  from_count?: number;
  to_count?: number;
  reason?: string;
}

/** Checks one sample the way the server will, so mistakes surface at the call, naming the field. */
export function validateSample(sample: MetricSample): WireSample {
  if (!sample || typeof sample !== "object") throw new TypeError("sendMetrics needs a sample object");
  const id = sample.instancePoolId;
  if (typeof id !== "string" || id.trim() === "" || id.length > 255) {
    throw new TypeError(`instancePoolId must be a non-empty string of at most 255 characters`);
  }
  const wire: WireSample = {
    instance_pool_id: id,
    ts: "",
    cpu_util: percent("cpuUtil", sample.cpuUtil),
    memory_util: percent("memoryUtil", sample.memoryUtil),
    instance_count: count("instanceCount", sample.instanceCount),
    scaling_event: false,
    scaling_direction: null,
  };
  const event = sample.scalingEvent ?? false;
  if (typeof event !== "boolean") {
    throw new TypeError(`scalingEvent must be a boolean (got ${JSON.stringify(event)})`);
  }
  const direction = sample.scalingDirection ?? null;
  if (direction !== null) {
    const upper = typeof direction === "string" ? direction.toUpperCase() : direction;
    if (upper !== "UP" && upper !== "DOWN") {
      throw new RangeError(`scalingDirection must be "UP" or "DOWN" (got ${JSON.stringify(direction)})`);
    }
    if (!event) throw new TypeError(`scalingDirection is only allowed with scalingEvent: true`);
    wire.scaling_direction = upper;
  } else if (event) {
    throw new TypeError(`scalingDirection ("UP" or "DOWN") is required when scalingEvent is true`);
  }
  wire.scaling_event = event;
  if (sample.fromCount !== undefined) wire.from_count = count("fromCount", sample.fromCount);
  if (sample.toCount !== undefined) wire.to_count = count("toCount", sample.toCount);
  if (sample.reason !== undefined) {
    if (typeof sample.reason !== "string" || sample.reason.length > 500) {
      throw new TypeError("reason must be a string of at most 500 characters");
    }
    wire.reason = sample.reason;
  }
  const ts = sample.ts === undefined ? new Date() : new Date(sample.ts);
  if (Number.isNaN(ts.getTime())) {
    throw new TypeError(`ts must be a valid date (got ${JSON.stringify(sample.ts)})`);
  }
  wire.ts = ts.toISOString();
  return wire;
}

function percent(field: string, value: unknown): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`${field} must be a number (got ${JSON.stringify(value)})`);
  }
  if (!(value >= 0 && value <= 100)) throw new RangeError(`${field} must be within 0..100 (got ${value})`);
  return value;
}

function count(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${field} must be a whole number (got ${JSON.stringify(value)})`);
  }
  if (value < 0) throw new RangeError(`${field} must be at least 0 (got ${value})`);
  return value;
}

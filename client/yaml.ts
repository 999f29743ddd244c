// A small YAML emitter for the config document (objects, arrays, scalars), so the client needs no YAML
// library. Servers send config.yaml as the operator wrote it (the `yaml` field), which the client writes as
// is; this rendering is only the fallback for older servers that send the body alone. Strings are written plain only when no YAML 1.1 or 1.2 reader could take them for anything but
// a string (so "05:30", "yes", "1e3" and "null" are quoted); everything else is double-quoted JSON, which
// is valid YAML.

const PLAIN = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const RESERVED = /^(?:y|n|yes|no|on|off|true|false|null|nan|inf|~)$/i;

function scalar(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} to YAML`);
    return JSON.stringify(value);
  }
  if (typeof value === "string") {
    return PLAIN.test(value) && !RESERVED.test(value) ? value : JSON.stringify(value);
  }
  throw new TypeError(`cannot write a ${typeof value} to YAML`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function emit(value: unknown, indent: string, lines: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isObject(item) && Object.keys(item).length > 0) {
        const nested: string[] = [];
        emit(item, indent + "  ", nested);
        // The first key goes on the dash line: "- key: value".
        lines.push(`${indent}- ${nested[0].slice(indent.length + 2)}`, ...nested.slice(1));
      } else if (Array.isArray(item) && item.length > 0) {
        lines.push(`${indent}-`);
        emit(item, indent + "  ", lines);
      } else {
        lines.push(`${indent}- ${inline(item)}`);
      }
    }
    return;
  }
  if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      if ((isObject(item) && Object.keys(item).length > 0) || (Array.isArray(item) && item.length > 0)) {
        lines.push(`${indent}${scalar(key)}:`);
        emit(item, Array.isArray(item) ? indent + "  " : indent + "  ", lines);
      } else {
        lines.push(`${indent}${scalar(key)}: ${inline(item)}`);
      }
    }
    return;
  }
  lines.push(`${indent}${scalar(value)}`);
}

function inline(value: unknown): string {
  if (Array.isArray(value)) return "[]";
  if (isObject(value)) return "{}";
  return scalar(value);
}

/** The document as YAML text (block style), optionally led by comment lines. */
export function toYaml(document: Record<string, unknown>, comments: string[] = []): string {
  const lines = comments.map((line) => `# ${line}`);
  if (Object.keys(document).length === 0) lines.push("{}");
  else emit(document, "", lines);
  return lines.join("\n") + "\n";
}

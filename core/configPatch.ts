// A JSON merge patch (RFC 7386) applied to the pools of a config.yaml kept as written. The text is edited
// through the `yaml` package's Document API (parse, setIn/deleteIn on the pool's map, toString), so comments,
// key order, flow maps and the comments on replaced values stay as the operator wrote them; only the patched
// values are new (strings that YAML 1.1 readers would misread, like "05:30", are quoted as toYaml
// quotes them). The result is checked by the same parser as any config (parseConfigInput).
import { type Document, isMap, isScalar, isSeq, parseDocument, Scalar, visit } from "yaml";
import { readsBackAsItself } from "./configDocument.ts";

/** Which pools of a document a patch applies to: every given criterion must match (none: every pool). */
export interface PoolSelector {
  region?: string;
  compartment_id?: string;
  instance_pool_id?: string;
}

export type PatchOutcome =
  | { ok: true; text: string; pools: number }
  | { ok: false; message: string };

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** A merge patch's value as a new node: nulls inside an object are dropped (RFC 7386: a patch object put
 * where nothing was merges into an empty object). */
function withoutNulls(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).filter(([, item]) => item !== null).map(([key, item]) => [key, withoutNulls(item)]),
  );
}

function quoteAmbiguous(document: Document, value: unknown) {
  const node = document.createNode(value);
  visit(node, {
    Scalar(_key, scalar) {
      if (typeof scalar.value === "string" && !readsBackAsItself(scalar.value)) {
        scalar.type = Scalar.QUOTE_DOUBLE;
      }
    },
  });
  return node;
}

function mergeInto(document: Document, path: (string | number)[], patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    const at = [...path, key];
    if (value === null) {
      document.deleteIn(at);
    } else if (isPlainObject(value) && isMap(document.getIn(at, true))) {
      mergeInto(document, at, value);
    } else if (isScalar(document.getIn(at, true)) && !isPlainObject(value) && !Array.isArray(value)) {
      // A value replaced in place keeps its comment (`max: 75 # scale up above this`).
      const scalar = document.getIn(at, true) as Scalar;
      scalar.value = value;
      scalar.type = typeof value === "string" && !readsBackAsItself(value) ? Scalar.QUOTE_DOUBLE : undefined;
    } else {
      document.setIn(at, quoteAmbiguous(document, withoutNulls(value)));
    }
  }
}

function scalarText(node: unknown): string | undefined {
  return isScalar(node) && node.value !== null && node.value !== undefined ? String(node.value) : undefined;
}

/** Applies `patch` to every pool of `text` that `selector` matches. `pools` counts the pools patched (0:
 * none matched; the text is returned unchanged). Fails when the text is no mapping with a pools list. */
export function patchConfigText(
  text: string,
  patch: Record<string, unknown>,
  selector: PoolSelector = {},
): PatchOutcome {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) return { ok: false, message: "the current config is not valid YAML" };
  const pools = document.get("pools", true);
  if (!isSeq(pools)) return { ok: false, message: "the current config has no pools list" };
  let patched = 0;
  const wanted = Object.entries(selector).filter(([, value]) => value);
  pools.items.forEach((pool, index) => {
    if (!isMap(pool)) return;
    if (wanted.some(([key, value]) => scalarText(pool.get(key, true)) !== value)) return;
    mergeInto(document, ["pools", index], patch);
    patched++;
  });
  if (patched === 0) return { ok: true, text, pools: 0 };
  return {
    ok: true,
    text: document.toString({ lineWidth: 0, flowCollectionPadding: false }),
    pools: patched,
  };
}

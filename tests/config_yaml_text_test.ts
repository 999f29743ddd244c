// toYaml writes most documents directly (core/configDocument.ts plainYaml): the same text as the yaml
// library writes, character for character, or it leaves the document to the library.
import assert from "node:assert/strict";
import { libraryYaml, plainYaml, toYaml } from "../core/configDocument.ts";
import { testConfig } from "./helpers/configs.ts";

const STRINGS = [
  "ocid1.instancepool.oc1.iad.aaaaaaaaexample",
  "ocid1.compartment.oc1..aaaabench",
  "us-ashburn-1",
  "oci",
  "05:30",
  "23:59",
  "",
  " ",
  " x",
  "x ",
  "y",
  "N",
  "yes",
  "No",
  "on",
  "OFF",
  "null",
  "Null",
  "~",
  "true",
  "False",
  "nan",
  ".nan",
  ".inf",
  "-.inf",
  "0o17",
  "0x1F",
  "1e3",
  "123",
  "-1",
  "+1",
  "1_000",
  "1:20:30",
  "12:00:00",
  "2026-01-01",
  "2026-01-01T00:00:00Z",
  "a: b",
  "a #b",
  "#a",
  "- a",
  "-a",
  "a-",
  "[a]",
  "{a}",
  "a,b",
  "*a",
  "&a",
  "!a",
  "|a",
  ">a",
  "%a",
  "@a",
  "`a",
  "?a",
  "? a",
  ":a",
  "a:",
  "hello world",
  "it's",
  'say "hi"',
  "back\\slash",
  "line\nbreak",
  "tab\there",
  "naïve",
  "日本",
  "a".repeat(200),
  "ocid1.x/y_z-1.2",
  "=",
  "<<",
  "a<<",
];
const NUMBERS = [0, 1, -1, 10, 75.5, 0.1, -3.25, 1e21, 1e-7, 123456789012, -0, 2 ** 53 + 2];

/** A document of `depth` levels from a seeded generator. */
function generate(seed: number) {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)];
  const value = (depth: number): unknown => {
    const kind = next();
    if (depth > 0 && kind < 0.25) {
      const map: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 4); i > 0; i--) map[pick(STRINGS)] = value(depth - 1);
      return map;
    }
    if (depth > 0 && kind < 0.45) {
      return Array.from({ length: Math.floor(next() * 4) }, () => value(depth - 1));
    }
    if (kind < 0.75) return pick(STRINGS);
    if (kind < 0.9) return pick(NUMBERS);
    return pick([true, false, null]);
  };
  const root: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 5); i > 0; i--) root[pick(STRINGS)] = value(4);
  return root;
}

Deno.test("toYaml writes what the yaml library writes", () => {
  const documents: Record<string, unknown>[] = [
    {},
    testConfig("ocid1.instancepool.oc1.iad.aaaaaaaapoola"),
    { a: [], b: {}, c: [{}], d: [[]], e: [[1, 2], [{ a: 1, b: [3] }]], f: [{ g: { h: [null] } }] },
    { pools: [{ schedules: [{ start_time: "05:30", end_time: "05:50" }] }] },
    { "1": "one", b: "two", "0": "zero" },
  ];
  for (let seed = 1; seed <= 3000; seed++) documents.push(generate(seed));
  let direct = 0;
  for (const document of documents) {
    const expected = libraryYaml(document);
    assert.equal(toYaml(document), expected, JSON.stringify(document));
    const written = plainYaml(document);
    if (written !== undefined) direct++;
    assert.ok(written === undefined || written === expected);
  }
  assert.ok(direct > documents.length / 10, `${direct} of ${documents.length} written directly`);
  assert.notEqual(plainYaml(testConfig("ocid1.instancepool.oc1.iad.aaaaaaaapoola")), undefined);
  // A shared object is an alias for the library: left to it.
  const shared = { min: 1, max: 2 };
  assert.equal(toYaml({ a: shared, b: shared }), libraryYaml({ a: shared, b: shared }));
});

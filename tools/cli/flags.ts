// A command's flags written as words, as its usage line names them: the parseArgs (node:util) options
// for the flags that take a value and for the switches, typed so that parseArgs types their values.

/** "a b c" -> "a" | "b" | "c". */
type Words<S extends string> = S extends `${infer Head} ${infer Tail}` ? Head | Words<Tail> : S;

export type FlagOptions<S extends string, B extends string> =
  & { [K in Words<S>]: { type: "string" } }
  & { [K in Words<B>]: { type: "boolean" } };

/** `flagOptions("nodes pools", "quick")`: --nodes and --pools take a value, --quick is on or off. */
export function flagOptions<S extends string, B extends string = never>(
  valued: S,
  switches?: B,
): FlagOptions<S, B> {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const name of valued.split(" ")) options[name] = { type: "string" };
  for (const name of switches?.split(" ") ?? []) options[name] = { type: "boolean" };
  return options as FlagOptions<S, B>;
}

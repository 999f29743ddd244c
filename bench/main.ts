// `deno task bench [agents|pages] [options]`: the benchmarks, each in a process of its own.
//   deno task bench                 both, full size (minutes)
//   deno task bench --quick         both, small (what CI runs)
//   deno task bench pages --nodes 2000 --keep   one, with its own options (see the top of each file)
const BENCHES = { agents: "agents.ts", pages: "pages.ts" } as const;
type BenchName = keyof typeof BENCHES;

const [first, ...rest] = Deno.args;
let plan: [BenchName, string[]][];
if (first === "agents" || first === "pages") plan = [[first, rest]];
else if (Deno.args.every((arg) => arg === "--quick")) {
  plan = (Object.keys(BENCHES) as BenchName[]).map((name) => [name, Deno.args]);
} else {
  console.error(
    `name the benchmark for options other than --quick: deno task bench agents|pages ${Deno.args.join(" ")}`,
  );
  Deno.exit(2);
}

for (const [name, args] of plan) {
  console.log(`== bench ${name} ${args.join(" ")}`.trimEnd());
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(BENCHES[name], import.meta.url).pathname, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) Deno.exit(code);
}

/**
 * `node test/dist/bench/cpu-summary.js <dir> [top]`: where each service's CPU went, from the V8
 * CPU profiles the flow benchmark's `--cpu-prof <dir>` leaves (`<service>.cpuprofile`). For each
 * profile: busy time (everything but idle), by where the code lives (a package, Cadre's own
 * packages, Node's internals, the garbage collector), then the functions with the most self time.
 */

import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { printTable } from "./stats.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [dir, topArg] = process.argv.slice(2);
const top = Number(topArg ?? 15);
if (!dir || !Number.isInteger(top) || top < 1) {
  process.stderr.write("usage: node test/dist/bench/cpu-summary.js <dir with .cpuprofile files> [top functions]\n");
  process.exit(2);
}

/** Where a frame's code lives: an npm package, a Cadre package, Node itself, or V8's own. */
export function placeOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const own = /\/(packages|services)\/([^/]+)\//.exec(url);
  if (own) return `cadre ${own[2]}`;
  if (url.startsWith("node:")) return "node internals";
  return url;
}

const ms = (us: number) => (us / 1000).toFixed(0);
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith(".cpuprofile"))
  .sort()) {
  const p = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of p.samples.entries()) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  const places = new Map<string, number>();
  const fns = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const f = (byId.get(id) as ProfileNode).callFrame;
    if (f.functionName === "(idle)") continue;
    busy += us;
    const place = placeOf(f.url, f.functionName);
    places.set(place, (places.get(place) ?? 0) + us);
    const fn = `${f.functionName || "(anonymous)"} ${f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : ""}`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const share = (us: number) => `${((100 * us) / busy).toFixed(1)}%`;
  process.stdout.write(`\n${basename(file, ".cpuprofile")}: ${ms(busy)} ms busy\n`);
  printTable([
    ["where", "ms", "share"],
    ...[...places]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, us]) => [k, ms(us), share(us)]),
  ]);
  printTable([
    ["function (self time)", "ms", "share"],
    ...[...fns]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => [k.slice(0, 90), ms(us), share(us)]),
  ]);
}

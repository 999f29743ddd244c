// Every file the pages and docs load, imported as text so `deno compile` embeds it.
// Nothing is fetched from a CDN: the docs and console work on an air-gapped network.
import htmx from "htmx.org/dist/htmx.min.js" with { type: "text" };
import docsInit from "./docs-init.js" with { type: "text" };
import appCss from "./app.css" with { type: "text" };
import appJs from "./app.js" with { type: "text" };

export interface Asset {
  body: string;
  contentType: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The console's files, held in memory from the start (a few hundred KB). */
export const assets: Record<string, Asset> = {
  "htmx.min.js": { body: htmx, contentType: JS },
  "docs-init.js": { body: docsInit, contentType: JS },
  // The console's own style and behaviour (no inline script anywhere: the pages' CSP forbids it).
  "app.css": { body: appCss, contentType: CSS },
  "app.js": { body: appJs, contentType: JS },
};

/** The docs' bundles, loaded on first use (static/docsAssets.ts). */
const DOCS_ASSETS = new Set(["swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"]);

/** The static file of this name, or undefined when there is none. */
export async function findAsset(name: string): Promise<Asset | undefined> {
  if (Object.hasOwn(assets, name)) return assets[name];
  if (!DOCS_ASSETS.has(name)) return undefined;
  return (await import("./docsAssets.ts")).docsAssets[name];
}

// Every file the pages and docs load, imported as text so `deno compile` embeds it.
// Nothing is fetched from a CDN: the docs and console work on an air-gapped network.
import htmx from "htmx.org/dist/htmx.min.js" with { type: "text" };
import swaggerBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import redoc from "redoc/bundles/redoc.standalone.js" with { type: "text" };
import docsInit from "./docs-init.js" with { type: "text" };
import appCss from "./app.css" with { type: "text" };
import appJs from "./app.js" with { type: "text" };

export interface Asset {
  body: string;
  contentType: string;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

export const assets: Record<string, Asset> = {
  "htmx.min.js": { body: htmx, contentType: JS },
  "swagger-ui-bundle.js": { body: swaggerBundle, contentType: JS },
  "swagger-ui.css": { body: swaggerCss, contentType: CSS },
  // ReDoc's footer loads its logo from a CDN; point it at nothing so the page makes no outside request.
  "redoc.standalone.js": {
    body: redoc.replaceAll("https://cdn.redoc.ly/redoc/logo-mini.svg", "data:,"),
    contentType: JS,
  },
  "docs-init.js": { body: docsInit, contentType: JS },
  // The console's own style and behaviour (no inline script anywhere: the pages' CSP forbids it).
  "app.css": { body: appCss, contentType: CSS },
  "app.js": { body: appJs, contentType: JS },
};

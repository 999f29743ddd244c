// The API docs' third-party bundles (Swagger UI, ReDoc): about 6 MB of text, imported only when /docs or
// /redoc first asks for them (static/assets.ts findAsset), so a replica nobody reads the docs on never
// holds them. Imported as text so `deno compile` embeds them all the same.
import swaggerBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import redoc from "redoc/bundles/redoc.standalone.js" with { type: "text" };
import type { Asset } from "./assets.ts";

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

export const docsAssets: Record<string, Asset> = {
  "swagger-ui-bundle.js": { body: swaggerBundle, contentType: JS },
  "swagger-ui.css": { body: swaggerCss, contentType: CSS },
  // ReDoc's footer loads its logo from a CDN; point it at nothing so the page makes no outside request.
  "redoc.standalone.js": {
    body: redoc.replaceAll("https://cdn.redoc.ly/redoc/logo-mini.svg", "data:,"),
    contentType: JS,
  },
};

// Starts Swagger UI or ReDoc on /openapi.json (a file, not inline script, so a strict CSP can apply).
(function () {
  const page = globalThis;
  if (document.getElementById("swagger-ui") && page.SwaggerUIBundle) {
    page.ui = page.SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      withCredentials: true,
      presets: [page.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  }
  const redocRoot = document.getElementById("redoc");
  if (redocRoot && page.Redoc) {
    page.Redoc.init("/openapi.json", { hideDownloadButton: false }, redocRoot);
  }
})();

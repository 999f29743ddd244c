// Starts Swagger UI or ReDoc on /openapi.json (a file, not inline script, so a strict CSP can apply).
(function () {
  var swaggerRoot = document.getElementById("swagger-ui");
  if (swaggerRoot && window.SwaggerUIBundle) {
    window.ui = window.SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      withCredentials: true,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  }
  var redocRoot = document.getElementById("redoc");
  if (redocRoot && window.Redoc) {
    window.Redoc.init("/openapi.json", { hideDownloadButton: false }, redocRoot);
  }
})();

// Starts Swagger UI on the app's own OpenAPI schema (kept out of the page for the CSP).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // Off: the default badge is an image from validator.swagger.io, shown on any host but localhost.
  validatorUrl: null,
});

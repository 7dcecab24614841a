// Starts Swagger UI on the app's own OpenAPI schema (kept out of the page for the CSP).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  // Off: a deep link is an <a> inside each operation's <button>, a control nested in a control
  // that keyboards and screen readers cannot reach on its own (axe: nested-interactive).
  deepLinking: false,
  // A light theme for the request and response examples: the default's numbers are 3.5:1.
  syntaxHighlight: { activated: true, theme: "idea" },
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // Off: the default badge is an image from validator.swagger.io, shown on any host but localhost.
  validatorUrl: null,
});

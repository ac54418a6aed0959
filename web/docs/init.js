// The interactive API reference at /docs: Swagger UI (vendored in ./swagger-ui, see its
// README) over the document the server generates from its code, so the page always describes
// the server that serves it. "Try it out" calls the same server.
window.ui = window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#api',
  deepLinking: true,
  // Sign-in tokens entered under "Authorize" stay for the tab's lifetime only.
  persistAuthorization: false,
  // No validator badge: it would send the document to swagger.io.
  validatorUrl: null,
});

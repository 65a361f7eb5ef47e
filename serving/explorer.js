// The API explorer (Swagger UI from BentoML's local files) on this service's own description.
// No validator badge (it would load an image from validator.swagger.io) and no loading of
// other descriptions named in the URL.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "./docs.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    queryConfigEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});

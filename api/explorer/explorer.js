// Starts Swagger UI on the API's OpenAPI document. It is a file of its own,
// not an inline script, so the page's Content-Security-Policy can refuse
// every script that the server did not send as a file.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    domNode: root,
    url: root.dataset.specUrl,
    presets: [SwaggerUIBundle.presets.apis],
    // BaseLayout has no top bar: no box to load another document from.
    layout: "BaseLayout",
    deepLinking: true,
    // A bearer token entered in "Authorize" lives in memory only, never in
    // localStorage.
    persistAuthorization: false,
    // Ignore ?url= and ?configUrl= in the page's address.
    queryConfigEnabled: false,
    // The default sends the spec to validator.swagger.io for a badge.
    validatorUrl: null,
    displayRequestDuration: true
  });
})();

// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // Outcome form: hide drug and quantity while "clean" is chosen.
  const form = document.getElementById("outcome-form");
  if (form) {
    const sync = () => {
      const clean = form.querySelector('input[name="result"][value="clean"]');
      form.classList.toggle("is-clean", Boolean(clean && clean.checked));
    };
    form.addEventListener("change", sync);
    sync();
  }
  // Filters: apply a new day, stream, port or band as soon as it is chosen.
  const filters = document.querySelector("form.filters");
  if (filters) {
    filters.querySelectorAll("select, input[type=date], input[type=checkbox]").forEach((el) => {
      el.addEventListener("change", () => filters.requestSubmit());
    });
  }
  // Evidence record: the print button prints the page (its print stylesheet).
  document.querySelectorAll("[data-print]").forEach((el) => {
    el.addEventListener("click", () => window.print());
  });
  // The network page: draws the graph of #graph-data with Cytoscape (vendored, same origin,
  // loaded by that page only); the table beside it holds the same content.
  drawNetwork();
});

function drawNetwork() {
  const box = document.getElementById("graph");
  const data = document.getElementById("graph-data");
  if (!box || !data || typeof cytoscape !== "function") return;
  const elements = JSON.parse(data.textContent);
  const size = (n) => 18 + 10 * Math.log2(1 + (n.data("shipments") || 0));
  const edges = elements.filter((e) => e.data.source).length;
  const cy = cytoscape({
    container: box,
    elements,
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: {
        "background-color": "#7d95ad", label: "data(label)", "font-size": 10,
        "text-valign": "bottom", "text-margin-y": 3, color: "#1d2733",
        width: size, height: size } },
      { selector: "node[seizures > 0]", style: { "background-color": "#b42318" } },
      { selector: "node[?watched]", style: { "border-width": 4, "border-color": "#e69500" } },
      { selector: "node[?start]", style: { "border-width": 3, "border-color": "#1f5fa8" } },
      { selector: "node[?hub]", style: {
        shape: "diamond", "background-color": "#c9d3dd", width: 26, height: 26, color: "#5d6b7a" } },
      { selector: "edge", style: {
        width: 1.5, "line-color": "#a9b7c5", label: edges > 25 ? "" : "data(label)", "font-size": 8,
        color: "#5d6b7a", "curve-style": "bezier" } },
    ],
    layout: { name: elements.length > 400 ? "grid" : "cose", animate: false, randomize: false,
              nodeRepulsion: 9000, idealEdgeLength: 80 },
  });
  cy.on("tap", "node", (event) => {
    const href = event.target.data("href");
    if (href) window.location.assign(href);
  });
  box.dataset.drawn = String(cy.nodes().length);
}

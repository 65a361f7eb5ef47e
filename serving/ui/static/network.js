// The network page: draws the graph of #graph-data with Cytoscape (vendored, same origin).
// The table beside it holds the same content for readers without the picture.
document.addEventListener("DOMContentLoaded", () => {
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
});

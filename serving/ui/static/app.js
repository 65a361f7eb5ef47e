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
});

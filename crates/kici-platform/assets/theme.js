// Runs before the page is painted (loaded without defer): the theme the viewer chose with the
// header's toggle (localStorage "kici-theme": light or dark), else the system's
// (prefers-color-scheme), followed live while no choice is stored.
"use strict";
(function () {
  const media = window.matchMedia("(prefers-color-scheme: dark)");
  const apply = () => {
    const chosen = localStorage.getItem("kici-theme");
    const theme = chosen === "light" || chosen === "dark" ? chosen : media.matches ? "dark" : "light";
    document.documentElement.dataset.theme = theme;
  };
  apply();
  media.addEventListener("change", apply);
  window.kiciTheme = {
    // light → dark → system (no stored choice) → light
    cycle() {
      const chosen = localStorage.getItem("kici-theme");
      if (chosen === "light") localStorage.setItem("kici-theme", "dark");
      else if (chosen === "dark") localStorage.removeItem("kici-theme");
      else localStorage.setItem("kici-theme", "light");
      apply();
      return localStorage.getItem("kici-theme") || "system";
    },
  };
})();

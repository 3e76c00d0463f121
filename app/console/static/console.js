// Drag-and-drop onto the upload form: the dropped file goes into its file input, and the form
// posts as if the file had been chosen. Without JavaScript the file picker does the same.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-dropzone]")) {
    const zone = form.querySelector(".drop");
    const input = form.querySelector("input[type=file]");
    for (const name of ["dragenter", "dragover"]) {
      form.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
    }
    for (const name of ["dragleave", "drop"]) {
      form.addEventListener(name, () => zone.classList.remove("over"));
    }
    form.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        form.requestSubmit();
      }
    });
  }
});

// Charts: each [data-chart] element is followed by the JSON of its chart ({x, xlabel, series:
// [{label, values}], marker, points}); uPlot draws it. The page also has the numbers as text.
const PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#495057"];

function markerPlugin(step) {
  return {
    hooks: {
      draw: [(u) => {
        if (step === null || step === undefined) return;
        const x = u.valToPos(step, "x", true);
        const ctx = u.ctx;
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.strokeStyle = "#868e96";
        ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.restore();
      }],
    },
  };
}

function drawChart(el) {
  const chart = JSON.parse(el.nextElementSibling.textContent);
  const width = Math.max(280, el.clientWidth || 480);
  const opts = {
    width,
    height: 260,
    scales: chart.range
      ? { x: { time: false, range: chart.range }, y: { range: chart.range } }
      : { x: { time: false } },
    axes: [{ label: chart.xlabel }, {}],
    series: [{ label: chart.xlabel }].concat(chart.series.map((s, i) => ({
      label: s.label,
      stroke: PALETTE[i % PALETTE.length],
      width: 2,
      dash: s.label === "perfect calibration" ? [4, 4] : undefined,
      points: { show: Boolean(chart.points) || chart.x.length < 30 },
      spanGaps: s.label === "perfect calibration",
    }))),
    plugins: [markerPlugin(chart.marker)],
  };
  new uPlot(opts, [chart.x].concat(chart.series.map((s) => s.values)), el);
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof uPlot === "undefined") return;
  for (const el of document.querySelectorAll("[data-chart]")) drawChart(el);
});

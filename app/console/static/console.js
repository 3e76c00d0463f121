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

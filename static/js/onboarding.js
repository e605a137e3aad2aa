// The wizard and Settings: avatar size checked before upload, the address previewed, links copied.
document.addEventListener("DOMContentLoaded", () => {
  const avatar = document.querySelector("input[type=file][data-max-bytes]");
  if (avatar) {
    const errors = document.getElementById("errors-avatar");
    avatar.addEventListener("change", () => {
      const file = avatar.files && avatar.files[0];
      const max = Number(avatar.dataset.maxBytes);
      errors.replaceChildren();
      errors.hidden = true;
      if (file && max && file.size > max) {
        const item = document.createElement("li");
        item.textContent = `The image is too large: at most ${avatar.dataset.maxLabel}, please.`;
        errors.append(item);
        errors.hidden = false;
        avatar.value = "";
      }
    });
  }
  const zoneSelect = document.querySelector("select[data-suggest-browser]");
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zoneSelect && zone && zoneSelect.querySelector(`option[value="${CSS.escape(zone)}"]`)) {
    zoneSelect.value = zone;
  }
  const name = document.getElementById("id_name");
  const slug = document.getElementById("id_slug");
  const preview = document.getElementById("slug-preview");
  if (name && slug && preview) {
    const slugify = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9\s-]/g, "").trim().replace(/[\s-]+/g, "-").slice(0, 50).replace(/^-+|-+$/g, "");
    const update = () => { preview.textContent = slug.value.trim().toLowerCase() || slugify(name.value); };
    name.addEventListener("input", update);
    slug.addEventListener("input", update);
    update();
  }
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.querySelector(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (error) {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
    });
  });
});

// Fills hidden timezone fields with the browser's IANA timezone (e.g. "Africa/Nairobi").
document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  document.querySelectorAll('input[data-browser-timezone]').forEach((input) => {
    if (!input.value) input.value = zone;
  });
});

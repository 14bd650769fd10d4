// The certificate's print button: the browser's print dialog, where "save as PDF" is one choice.
document.querySelector('#print')?.addEventListener('click', () => window.print());

"""Enterprise codes: USCC validation, signed code tokens, QR rendering and scanning."""
